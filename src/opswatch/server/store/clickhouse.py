"""The ClickHouse event store: the ``EventStore`` contract on a ClickHouse database.

Layout, idempotency and retention, and why: ``clickhouse_layout.py``; the engine seam (chdb in process
or a server over HTTP): ``clickhouse_client.py``; user SQL to ClickHouse and its limits:
``clickhouse_sql.py``. Records become rows with the DuckDB store's ``split``/``place`` and come back
with its ``to_record``, and attribute keys are promoted by the same ``KeyCatalog``, so both stores
store and answer the same.

* **Appends** are serialized in this process (one writer): look up the batch's (project_id, event_id)
  pairs, keep the new ones, settle the catalog (``ALTER TABLE ADD COLUMN``, backfill), insert one
  ``JSONEachRow`` block with a deduplication token, and answer once the insert returned (the part is
  fsynced). A lost answer is retried once with the same token.
* **Spans**: ``span_rows`` and the ``spans`` view (``clickhouse_spans.py``), idempotent by (project_id,
  trace_id, span_id), written under the same lock.
* **Reads**: ``tail`` and ``get_events`` read ``event_rows``; ``query`` runs checked user SQL on the
  ``logs``/``events``/``spans`` views, transpiled to ClickHouse, under ClickHouse's own limit settings,
  and cuts the answer at the row and size caps as DuckDB's store does (``QueryResult.cut_by``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from ...config import ConfigError
from ...record import LEVEL_NAMES, Record, format_timestamp, parse_level
from .. import limits
from . import clickhouse_layout as chl
from . import clickhouse_rollups as chr_
from . import clickhouse_spans as chs
from .base import QueryError, QueryResult, QueryTimeout, SchemaInfo, StoreClosed, TailPage, retention_cutoff
from .catalog import JSON, KeyCatalog, KeyInfo, documented_fields, store_limits
from .clickhouse_client import (
    MEMORY_LIMIT_EXCEEDED,
    TIMEOUT_EXCEEDED,
    TOO_MANY_ROWS_OR_BYTES,
    ChdbClient,
    ClickHouseError,
    Client,
    HttpClient,
    TransportError,
    string_literal,
)
from .clickhouse_sql import capped, query_settings, to_clickhouse
from .layout import (
    CATALOG_TABLE,
    CONTAINER,
    CORE_NAMES,
    EVENTS_TABLE,
    META_TABLE,
    RESERVED,
    SEQ,
    SPAN_CATALOG_TABLE,
    SPAN_RESERVED,
    SPANS_TABLE,
    quote,
    with_spans,
)
from .rollups import RollupAnswer, RollupRequest
from .rows import json_lines, place, split, to_record, wide_ints_as_text

#: Settings of every write: synchronous mutations (schema changes, backfills, deletes are done when the
#: call returns), and RFC 3339 text parsed into ``DateTime64``.
_WRITE: dict[str, Any] = {"mutations_sync": 2, "date_time_input_format": "best_effort"}


class ClickHouseStoreError(Exception):
    """The database cannot be used as asked (unreachable, or its schema is from a newer opswatch)."""


def open_url(url: str, **options: Any) -> ClickHouseStore:
    """The store for ``OPSWATCH_EVENTS_URL=clickhouse://user:pass@host:8123/db`` (over HTTP)."""
    try:
        client = HttpClient(url)
    except ClickHouseError as err:
        raise ClickHouseStoreError(str(err)) from None
    return ClickHouseStore(client, **options)


def open_chdb(path: str | Path, **options: Any) -> ClickHouseStore:
    """The store on the ClickHouse engine in this process (``chdb``), in directory ``path``."""
    return ClickHouseStore(ChdbClient(path), **options)


class ClickHouseStore:
    """The event store in a ClickHouse database (``EventStore``; see the module docstring).

    Options (keyword-only; a bad value raises ``ConfigError`` naming it): ``retention_days`` (the
    table's native TTL; None leaves it as it is), ``promote_after``, ``max_promoted_columns``,
    ``max_catalog_keys`` (as DuckDB's), ``max_query_memory_bytes`` and ``max_result_bytes`` (limits of
    user queries) and ``clock`` (epoch seconds, for defaults and retention).
    """

    def __init__(
        self,
        client: Client,
        *,
        retention_days: int | None = None,
        promote_after: int = limits.STORE_PROMOTE_AFTER,
        max_promoted_columns: int = limits.STORE_MAX_PROMOTED_COLUMNS,
        max_catalog_keys: int = limits.STORE_MAX_CATALOG_KEYS,
        max_query_memory_bytes: int = limits.CLICKHOUSE_QUERY_MAX_MEMORY_BYTES,
        max_result_bytes: int = limits.CLICKHOUSE_QUERY_MAX_RESULT_BYTES,
        clock: Callable[[], float] = time.time,
        rollups: bool = True,
    ) -> None:
        for name, value, low in (
            ("promote_after", promote_after, 1),
            ("max_promoted_columns", max_promoted_columns, 0),
            ("max_catalog_keys", max_catalog_keys, 0),
            ("retention_days", retention_days if retention_days is not None else 1, 1),
            ("max_query_memory_bytes", max_query_memory_bytes, 1),
            ("max_result_bytes", max_result_bytes, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(name, f"expected a whole number >= {low}, got {value!r}")
        self._client = client
        self._clock = clock
        self._limits = {"max_memory_bytes": max_query_memory_bytes, "max_result_bytes": max_result_bytes}
        self._lock = threading.Lock()
        self._closed = False
        self.rows_written = 0
        self.duplicates_skipped = 0
        self.commits = 0
        self.last_commit_ms = 0.0
        self.spans_written = 0
        #: Per-minute rollups kept by a materialized view (``clickhouse_rollups.py``).
        self.rollups_enabled = rollups
        #: Changes whenever stored events change (appends, retention): readers may cache answers by it.
        self.data_version = 0
        try:
            keys = self._open_schema(retention_days)
            catalog_limits = store_limits(
                promote_after=promote_after, max_columns=max_promoted_columns, max_keys=max_catalog_keys
            )
            self._catalog = KeyCatalog(
                keys, reserved=RESERVED, protected=documented_fields(), **catalog_limits
            )
            self._schema = self._rebuild_views(keys)
            span_keys = self._load_catalog(SPAN_CATALOG_TABLE)
            #: Span attribute keys (``clickhouse_spans.py``); the same limits, a catalog of their own.
            self.span_catalog = KeyCatalog(span_keys, reserved=SPAN_RESERVED, **catalog_limits)
            self._span_columns = self._rebuild_span_view(span_keys)
            self._count = int(self._scalar(f"SELECT count() FROM {EVENTS_TABLE}"))
            newest = int(self._scalar(f"SELECT max({SEQ}) FROM {EVENTS_TABLE}") or 0)
            self._next_seq = max(newest, int(self._meta("last_seq") or 0)) + 1
        except ClickHouseError as err:
            client.close()
            raise ClickHouseStoreError(f"cannot open the event store at {client.where}: {err}") from None
        except BaseException:
            client.close()
            raise

    # -- schema --------------------------------------------------------------------------------------

    def _open_schema(self, retention_days: int | None) -> list[KeyInfo]:
        for statement in [*chl.create_statements(), *chs.span_table_statements()]:
            self._client.command(statement)
        found = self._meta("schema_version")
        version = int(found) if found else 0
        if version > chl.SCHEMA_VERSION:
            raise ClickHouseStoreError(
                f"the event store at {self._client.where} has schema version {version}, newer than this "
                f"opswatch ({chl.SCHEMA_VERSION}); upgrade opswatch"
            )
        if version == 0:
            self._set_meta("schema_version", str(chl.SCHEMA_VERSION))
        while 0 < version < chl.SCHEMA_VERSION:
            chl.MIGRATIONS[version](self._client)
            version += 1
            self._set_meta("schema_version", str(version))
        chr_.open_rollups(self._client, self.rollups_enabled, _WRITE)
        if retention_days is not None:
            self._client.command(chl.ttl_statement(retention_days), _WRITE)
            if self.rollups_enabled:
                self._client.command(chr_.ttl_statement(retention_days), _WRITE)
        return self._load_catalog(CATALOG_TABLE)

    def _load_catalog(self, table: str) -> list[KeyInfo]:
        _, rows = self._client.query(
            f"SELECT key, name, type, column_name, seen, cold_first, cold_last, project_id FROM {table} FINAL"
        )
        return [KeyInfo(*row) for row in rows]

    def _meta(self, key: str) -> str | None:
        value = self._scalar(f"SELECT value FROM {META_TABLE} FINAL WHERE key = {string_literal(key)}")
        return None if value is None else str(value)

    def _set_meta(self, key: str, value: str) -> None:
        line = orjson.dumps({"key": key, "value": value, "version": time.time_ns()})
        self._client.insert_json(META_TABLE, line, _WRITE)

    def _rebuild_views(self, keys: list[KeyInfo]) -> SchemaInfo:
        statements, schema = chl.view_statements(keys)
        for statement in statements:
            self._client.command(statement)
        return schema

    def _rebuild_span_view(self, keys: list[KeyInfo]) -> tuple[str, ...]:
        statements, columns = chs.span_view_statements(keys)
        for statement in statements:
            self._client.command(statement)
        self._span_columns = columns
        return columns

    def _scalar(self, sql: str) -> Any:
        _, rows = self._client.query(sql)
        return rows[0][0] if rows else None

    def _apply_plan(
        self, plan: Any, *, table: str = EVENTS_TABLE, catalog_table: str = CATALOG_TABLE
    ) -> None:
        """Columns for newly promoted keys (with their stored cold values copied), wider types, the
        catalog rows and the views. ClickHouse DDL is not transactional: every step can be repeated.
        The events' table and catalog by default; the spans pass theirs."""
        for info in plan.promoted:
            column_type = chl.PROMOTED_TYPES[info.type]
            self._client.command(
                f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote(info.column)} {column_type}", _WRITE
            )
        for info in plan.backfill:
            self._client.command(
                f"ALTER TABLE {table} UPDATE {quote(info.column)} = {chl.cold_expression(info)} "
                f"WHERE JSONHas({quote(CONTAINER)}, {string_literal(info.name)})",
                _WRITE,
            )
        for info in plan.widened:
            column_type = chl.PROMOTED_TYPES[info.type]
            self._client.command(
                f"ALTER TABLE {table} MODIFY COLUMN {quote(info.column)} {column_type}", _WRITE
            )
        if plan.removed:  # cold keys dropped to make room for another project's key
            keys = ", ".join(string_literal(info.key) for info in plan.removed)
            self._client.command(f"ALTER TABLE {catalog_table} DELETE WHERE key IN ({keys})", _WRITE)
        if plan.changed:
            version = time.time_ns()
            lines = b"\n".join(orjson.dumps(_catalog_row(info, version)) for info in plan.changed)
            self._client.insert_json(catalog_table, lines, _WRITE)
        if plan.view_changed and table == EVENTS_TABLE:
            self._schema = self._rebuild_views(list(plan.keys.values()))
        elif plan.view_changed:
            self._rebuild_span_view(list(plan.keys.values()))

    def _apply_span_plan(self, plan: Any) -> None:
        self._apply_plan(plan, table=SPANS_TABLE, catalog_table=SPAN_CATALOG_TABLE)

    # -- writing -------------------------------------------------------------------------------------

    def append(self, records: Sequence[Record]) -> int:
        """Store ``records``; return how many were new. Idempotent by (project_id, event_id)."""
        return len(self.append_new(records))

    def append_new(self, records: Sequence[Record]) -> list[int]:
        """``append``, answering the positions in ``records`` of those that were new (first of a
        repeated (project_id, event_id) pair inside the batch), for the ingest hooks."""
        if not records:
            if self._closed:
                raise StoreClosed("the event store is closed")
            return []
        received_at = format_timestamp(self._clock())
        with self._lock:
            if self._closed:
                raise StoreClosed("the event store is closed")
            started = time.perf_counter()
            split_rows: list[tuple[int, dict[str, Any], dict[str, Any] | None]] = []
            seen: set[tuple[Any, str]] = set()
            for position, record in enumerate(records):
                row, pending = split(record, received_at, self._catalog.placements)
                key = (row.get("project_id"), row["event_id"])
                if key not in seen:
                    seen.add(key)
                    split_rows.append((position, row, pending))
            stored = self._stored_keys(seen)
            kept = [
                (position, row, rest)
                for position, row, rest in split_rows
                if (row.get("project_id"), row["event_id"]) not in stored
            ]
            self.duplicates_skipped += len(records) - len(kept)
            if not kept:
                return []
            fresh = [(row, rest) for _, row, rest in kept]
            with_rest = [(row, pending) for row, pending in fresh if pending]
            plan = self._catalog.plan(
                [(row["timestamp"], pending) for row, pending in with_rest],
                [row.get("project_id") for row, _ in with_rest],
            )
            self._apply_plan(plan)
            self._catalog.adopt(plan)
            lower = self._catalog.lower
            rows = [place(row, pending, plan.keys, lower) if pending else row for row, pending in fresh]
            json_columns = {info.column for info in plan.keys.values() if info.column and info.type == JSON}
            for number, row in enumerate(rows, start=self._next_seq):
                row[SEQ] = number
                for name in ("error", CONTAINER, *json_columns):
                    if name in row:
                        row[name] = _json_text(row[name])
            self._insert(rows)
            self.data_version += 1
            self._next_seq += len(rows)
            self._count += len(rows)
            self.rows_written += len(rows)
            self.commits += 1
            self.last_commit_ms = (time.perf_counter() - started) * 1000
            return [position for position, _, _ in kept]

    def _stored_keys(self, keys: set[tuple[Any, str]]) -> set[tuple[Any, str]]:
        """Which of these (project_id, event_id) pairs are stored (a primary-key read)."""
        by_project: dict[Any, list[str]] = {}
        for project, event_id in sorted(keys, key=lambda key: (key[0] is None, key[0] or 0, key[1])):
            by_project.setdefault(project, []).append(event_id)
        found: set[tuple[Any, str]] = set()
        for project, ids in by_project.items():
            # The sorting key's prefix, then its second column: ClickHouse reads only matching granules.
            scope = "project_id IS NULL" if project is None else f"project_id = {int(project)}"
            for start in range(0, len(ids), 1000):
                wanted = ", ".join(string_literal(event_id) for event_id in ids[start : start + 1000])
                _, rows = self._client.query(
                    f"SELECT DISTINCT project_id, event_id FROM {EVENTS_TABLE} "
                    f"WHERE {scope} AND event_id IN ({wanted})"
                )
                found.update((row[0], row[1]) for row in rows)
        return found & keys

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        lines = json_lines(rows)
        digest = hashlib.sha256()
        for row in rows:
            digest.update(f"{row.get('project_id')}/{row['event_id']}\n".encode())
        settings = {
            **_WRITE,
            "insert_deduplicate": 1,
            "insert_deduplication_token": digest.hexdigest(),
            # a retried block is dropped by the rollup's view too, not counted twice
            "deduplicate_blocks_in_dependent_materialized_views": 1,
        }
        try:
            self._client.insert_json(EVENTS_TABLE, lines, settings)
        except TransportError:
            # The block may have landed: the same token makes the server drop a second copy.
            self._client.insert_json(EVENTS_TABLE, lines, settings)

    def delete_older_than(self, days: int) -> int:
        """Delete events whose timestamp is more than ``days`` days before now; return how many went.

        Days wholly before the cutoff are dropped as partitions; the cutoff's own day is deleted by
        a synchronous mutation. (The table's TTL does the same by itself, on ClickHouse's clock.)
        """
        cutoff = retention_cutoff(days, self._clock())
        condition = f"timestamp < parseDateTime64BestEffort({string_literal(cutoff)}, 3, 'UTC')"
        with self._lock:
            if self._closed:
                raise StoreClosed("the event store is closed")
            deleted = int(self._scalar(f"SELECT count() FROM {EVENTS_TABLE} WHERE {condition}") or 0)
            if deleted:
                # Whole days before the cutoff's day go as partitions (no rewrite); the rest row by row.
                _, expired = self._client.query(
                    f"SELECT DISTINCT toString(toDate(timestamp)) FROM {EVENTS_TABLE} "
                    f"WHERE toDate(timestamp) < toDate({string_literal(cutoff[:10])})"
                )
                for (day,) in expired:
                    self._client.command(f"ALTER TABLE {EVENTS_TABLE} DROP PARTITION {string_literal(day)}")
                self._client.command(f"ALTER TABLE {EVENTS_TABLE} DELETE WHERE {condition}", _WRITE)
                if self.rollups_enabled:
                    chr_.expire(self._client, cutoff, _WRITE)
                self._set_meta("last_seq", str(self._next_seq - 1))
                self.data_version += 1
                self._count -= deleted
            return deleted

    # -- spans ---------------------------------------------------------------------------------------

    def append_spans(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store span rows durably (``clickhouse_spans.py``); return how many were new.

        Idempotent by (project_id, trace_id, span_id); serialized with ``append``. Raises
        ``StoreClosed`` as ``append`` does.
        """
        with self._lock:
            if self._closed:
                raise StoreClosed("the event store is closed")
            if not rows:
                return 0
            count = chs.insert_spans(self._client, rows, _WRITE, self.span_catalog, self._apply_span_plan)
            self.spans_written += count
            return count

    def delete_spans_older_than(self, days: int) -> int:
        """Span retention: delete spans that started more than ``days`` days ago; return how many went."""
        cutoff = retention_cutoff(days, self._clock())
        with self._lock:
            if self._closed:
                raise StoreClosed("the event store is closed")
            return chs.delete_spans_before(self._client, cutoff, _WRITE)

    # -- reading -------------------------------------------------------------------------------------

    def describe(self) -> SchemaInfo:
        """The views SQL may read (``logs``, ``events``, ``spans``), their columns and camelCase aliases."""
        return with_spans(self._schema, self._span_columns)

    def query(
        self, sql: str, *, max_rows: int, timeout: float, max_bytes: int = limits.QUERY_MAX_ANSWER_BYTES
    ) -> QueryResult:
        """Run one checked DuckDB-dialect statement on ClickHouse, transpiled, under the limit settings.

        The answer is cut at ``max_rows`` rows or about ``max_bytes`` bytes of values (as DuckDB's:
        ``truncated``, ``cut_by``); past ``max_result_bytes`` ClickHouse itself refuses the query.
        """
        if self._closed:
            raise StoreClosed("the event store is closed")
        text = to_clickhouse(sql)
        started = time.perf_counter()
        try:
            settings = query_settings(max_rows=max_rows, timeout=timeout, **self._limits)
            columns, rows = self._client.query(text, settings)
        except ClickHouseError as err:
            if err.code == TIMEOUT_EXCEEDED:
                raise QueryTimeout(
                    f"the query ran longer than {timeout:g} s and was stopped; "
                    "narrow it (a time range, fewer columns) or allow more time"
                ) from None
            if err.code == MEMORY_LIMIT_EXCEEDED:
                raise QueryError(
                    "the query needs more memory than the server allows (max_memory_usage "
                    f"{self._limits['max_memory_bytes']} bytes); narrow it: a time range, fewer columns "
                    "or groups, an aggregate"
                ) from None
            if err.code == TOO_MANY_ROWS_OR_BYTES:
                raise QueryError(
                    f"the answer is larger than {self._limits['max_result_bytes']} bytes "
                    "(max_result_bytes); select fewer columns or rows, or aggregate"
                ) from None
            raise QueryError(_error_text(err)) from None
        result = capped(columns, rows, max_rows, max_bytes)
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    def read_rollups(self, request: RollupRequest, *, max_groups: int, timeout: float) -> RollupAnswer | None:
        """The rollup's answer to ``request`` (``clickhouse_rollups.read_sql``), None when this store keeps
        none; at most ``max_groups`` groups (``truncated`` past them). Errors as ``query``'s."""
        if not self.rollups_enabled:
            return None
        if self._closed:
            raise StoreClosed("the event store is closed")
        sql = chr_.read_sql(request, max_groups)
        try:
            settings = query_settings(max_rows=max_groups + 1, timeout=timeout, **self._limits)
            _, rows = self._client.query(sql, settings)
        except ClickHouseError as err:
            if err.code == TIMEOUT_EXCEEDED:
                raise QueryTimeout(f"the rollup read ran longer than {timeout:g} s and was stopped") from None
            raise QueryError(_error_text(err)) from None
        return chr_.answer(rows, request, max_groups)

    def _physical(self) -> tuple[list[str], dict[str, KeyInfo]]:
        promoted = {info.column: info for info in self._catalog.keys.values() if info.column}
        return [SEQ, *CORE_NAMES, CONTAINER, *promoted], promoted

    def _records(self, where: str, order: str, limit: int | None = None) -> list[tuple[Any, ...]]:
        columns, _ = self._physical()
        select = ", ".join(quote(c) for c in columns)
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        sql = f"SELECT {select} FROM {EVENTS_TABLE} WHERE {where} ORDER BY {order}{tail}"
        _, rows = self._client.query(sql)
        return rows

    def tail(
        self,
        after: int | None = None,
        *,
        level: str | None = None,
        operation: str | None = None,
        text: str | None = None,
        project_id: int | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> TailPage:
        """Records stored after cursor ``after``, oldest first (see ``EventStore.tail``)."""
        if not 1 <= limit <= limits.TAIL_MAX_LIMIT:
            raise ValueError(f"limit must be 1..{limits.TAIL_MAX_LIMIT}, got {limit}")
        where: list[str] = []
        if level is not None:
            floor = parse_level(level)
            names = ", ".join(string_literal(name) for number, name in LEVEL_NAMES.items() if number >= floor)
            where.append(f"level IN ({names})")
        if operation:
            if operation.endswith("*"):
                where.append(f"startsWith(operation, {string_literal(operation[:-1])})")
            else:
                where.append(f"operation = {string_literal(operation)}")
        if text:
            where.append(f"positionCaseInsensitiveUTF8(message, {string_literal(text)}) > 0")
        if project_id is not None:
            where.append(f"project_id = {int(project_id)}")
        if kind:
            where.append(f"kind = {string_literal(kind)}")
        with self._lock:  # the cursor and the rows from the same moment
            if self._closed:
                raise StoreClosed("the event store is closed")
            newest = self._next_seq - 1
            if after is None:
                found = self._records(" AND ".join(where) or "1", f"{SEQ} DESC", limit)
                found.reverse()
                cursor = newest
            else:
                found = self._records(" AND ".join([f"{SEQ} > {int(after)}", *where]), SEQ, limit)
                cursor = found[-1][0] if len(found) == limit else max(after, newest)
        columns, promoted = self._physical()
        records = [to_record(row[1:], columns[1:], promoted) for row in found]
        return TailPage(records=records, cursor=int(cursor))

    def get_events(self, event_ids: Sequence[str], *, project_id: int | None = None) -> dict[str, Record]:
        """The stored records with these event ids (at most ``TAIL_MAX_LIMIT`` ids), by event id."""
        ids = [event_id for event_id in dict.fromkeys(event_ids) if isinstance(event_id, str)]
        if not ids:
            return {}
        if len(ids) > limits.TAIL_MAX_LIMIT:
            raise ValueError(f"at most {limits.TAIL_MAX_LIMIT} event ids per call, got {len(ids)}")
        where = f"event_id IN ({', '.join(string_literal(event_id) for event_id in ids)})"
        if project_id is not None:
            where += f" AND project_id = {int(project_id)}"
        found = self._records(where, SEQ)
        columns, promoted = self._physical()
        records = (to_record(row[1:], columns[1:], promoted) for row in found)
        return {record["event_id"]: record for record in records}

    # -- the rest ------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters for ``/metrics`` and ``opswatch serve``."""
        return {
            "events": self._count,
            "queue_depth": 0,
            "commits": self.commits,
            "rows_written": self.rows_written,
            "duplicates_skipped": self.duplicates_skipped,
            "spans_written": self.spans_written,
            "last_commit_ms": self.last_commit_ms,
            "attribute_keys": len(self._catalog.keys),
            "promoted_columns": self._catalog.promoted_count,
            "schema_version": chl.SCHEMA_VERSION,
            "engine": "clickhouse",
        }

    def close(self) -> None:
        """Release the session or connection (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._client.close()

    def __enter__(self) -> ClickHouseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _catalog_row(info: KeyInfo, version: int) -> dict[str, Any]:
    return {
        "key": info.key,
        "name": info.name,
        "type": info.type,
        "column_name": info.column,
        "seen": info.seen,
        "cold_first": info.cold_first,
        "cold_last": info.cold_last,
        "project_id": info.project_id,
        "version": version,
    }


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        return orjson.dumps(wide_ints_as_text(value), default=str).decode()


def _error_text(err: ClickHouseError) -> str:
    """ClickHouse's message without its stack trace and version footer."""
    text = str(err).strip().split("\nStack trace")[0]
    return text.split(". (")[0] if ". (" in text else text[:2000]
