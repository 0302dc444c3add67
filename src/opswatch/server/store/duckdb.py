"""The embedded event store: one DuckDB file, one writer thread, readers on their own cursors.

Layout and why: ``layout.py``; the attribute key catalog and promotion: ``catalog.py``; records to rows
and back: ``rows.py``; the single writer and group commit: ``writer.py``; the write path's statements:
``_write.py``. This module ties them together:

* **Durable appends.** ``append`` returns after the transaction holding its records committed, that
  is, after DuckDB wrote and synced its WAL: a ``kill -9`` afterwards loses none of them. Concurrent
  appends are merged into one transaction by the writer thread (group commit).
* **Idempotent by (project_id, event_id), across restarts, whatever the timestamp.** Before inserting,
  the writer records the group's keys in the ``event_keys`` index (a 64-bit hash per record, one
  ``INSERT ... ON CONFLICT DO NOTHING RETURNING``); keys already there are checked against the stored
  rows and skipped. Why an index of hashes and what it costs: ``layout.py``.
* **Fast loading.** Records whose fields all have a column of the right type (the steady state) are
  serialized as they are into one buffer of JSON lines in the appending thread, and DuckDB parses and
  maps them with ``from_json`` in C++: no per-value Python conversion, no per-record Python object.
  ``checkpoint_threshold`` is raised to 1 GiB (the default 16 MiB checkpoints every few thousand rows:
  the 35 k rows/s trap). A quiet writer checkpoints a grown WAL.
* **Safe reads.** The database is opened with external access disabled and its configuration locked:
  no file, network or extension access for anything that runs on it, whatever SQL gets through, and
  with a memory limit and a spill limit. ``query`` has a time limit, a row cap and a size cap
  (``_query.py``).
* **Retention.** ``delete_older_than(days)`` deletes by event time and checkpoints, so the freed
  blocks are reused by later appends (the file keeps its size, it does not grow).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import duckdb

from ...config import ConfigError
from ...record import LEVEL_NAMES, Record, format_timestamp, parse_level
from .. import limits
from .._files import make_private
from . import layout, rollups, spans
from ._query import Queries
from ._write import Key, apply_plan, arrival_seqs, insert_fast, insert_rows, stored_keys, survivors
from .base import QueryResult, SchemaInfo, StoreClosed, TailPage, retention_cutoff
from .catalog import KeyCatalog, KeyInfo, documented_fields, store_limits
from .layout import CONTAINER, EVENTS_TABLE, SEQ, quote
from .rows import Prepared, place, prepare, to_record
from .writer import WriterThread

#: The event store's file name inside a data directory.
EVENTS_FILENAME: Final = "events.duckdb"


class StoreError(Exception):
    """The store's file cannot be opened as asked (in use, missing, or from a newer opswatch)."""


class DuckDBStore:
    """The event store in one DuckDB file (``EventStore``; see the module docstring).

    Options (keyword-only; a bad value raises ``ConfigError`` naming it): ``read_only`` (no writer;
    for ``opswatch query --data-dir`` on a stopped server), ``promote_after``,
    ``max_promoted_columns``, ``max_catalog_keys``, ``max_rows_per_commit``,
    ``checkpoint_threshold_bytes``, ``idle_checkpoint_seconds``, ``memory_limit`` (DuckDB's, e.g.
    ``"2GB"``; default ``QUERY_MEMORY_LIMIT``), ``max_temp_directory_size`` (the most a query may spill
    to disk; default ``QUERY_TEMP_LIMIT``), ``threads``, ``query_grace_seconds`` (see ``query``) and ``clock``
    (epoch seconds; retention and defaults use it).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        promote_after: int = limits.STORE_PROMOTE_AFTER,
        max_promoted_columns: int = limits.STORE_MAX_PROMOTED_COLUMNS,
        max_catalog_keys: int = limits.STORE_MAX_CATALOG_KEYS,
        max_rows_per_commit: int = limits.STORE_MAX_ROWS_PER_COMMIT,
        checkpoint_threshold_bytes: int = limits.STORE_CHECKPOINT_THRESHOLD_BYTES,
        idle_checkpoint_seconds: float = limits.STORE_IDLE_CHECKPOINT_SECONDS,
        memory_limit: str | None = limits.QUERY_MEMORY_LIMIT,
        max_temp_directory_size: str | None = limits.QUERY_TEMP_LIMIT,
        threads: int | None = None,
        query_grace_seconds: float = limits.QUERY_STOP_GRACE_SECONDS,
        clock: Callable[[], float] = time.time,
        rollups: bool = True,
        rollup_compact_rows: int = limits.STORE_ROLLUP_COMPACT_ROWS,
    ) -> None:
        _positive("promote_after", promote_after)
        _positive("max_promoted_columns", max_promoted_columns, allow_zero=True)
        _positive("max_catalog_keys", max_catalog_keys, allow_zero=True)
        _positive("max_rows_per_commit", max_rows_per_commit)
        _positive("checkpoint_threshold_bytes", checkpoint_threshold_bytes)
        _positive("threads", threads)
        _positive("rollup_compact_rows", rollup_compact_rows)
        #: Per-minute rollups kept at ingest (``rollups.py``); read-only: read if the file has them.
        self.rollups_enabled = rollups
        self._rollup_compact_rows = rollup_compact_rows
        self._rollup_part = 0
        self._rollup_rows_since_compaction = 0
        #: Changes whenever stored events change (appends, retention): readers may cache answers by it.
        self.data_version = 0
        if idle_checkpoint_seconds <= 0:
            raise ConfigError(
                "idle_checkpoint_seconds", f"expected seconds > 0, got {idle_checkpoint_seconds!r}"
            )
        self.path = Path(path)
        self.read_only = read_only
        self._clock = clock
        self._read_lock = threading.Lock()
        self._closed = False
        self._queries = Queries(
            grace=query_grace_seconds,
            memory=f"memory_limit {memory_limit or 'default'}, "
            f"max_temp_directory_size {max_temp_directory_size or 'default'}",
        )
        config: dict[str, Any] = {
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "checkpoint_threshold": f"{checkpoint_threshold_bytes}B",
        }
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        if max_temp_directory_size is not None:
            config["max_temp_directory_size"] = max_temp_directory_size
        if threads is not None:
            config["threads"] = threads
        if read_only and not self.path.exists():
            raise StoreError(f"no event store at {self.path}")
        self._wal = Path(str(self.path) + ".wal")
        new = not self.path.exists()
        try:
            conn = duckdb.connect(str(self.path), read_only=read_only, config=config)
            if new:
                make_private(self.path)  # DuckDB creates it with the umask's mode; nothing is in it yet
        except duckdb.IOException as err:
            if "lock" in str(err).lower():
                raise StoreError(
                    f"the event store {self.path} is in use by another process (a running server?)"
                ) from None
            raise StoreError(f"cannot open the event store {self.path}: {err}") from None
        except duckdb.InvalidInputException as err:
            name = "max_temp_directory_size" if "temp" in str(err).lower() else "memory_limit"
            raise ConfigError(name, str(err)) from None
        try:
            keys = self._open_schema(conn)
            self._has_spans = spans.has_spans_table(conn)
            catalog_limits = store_limits(
                promote_after=promote_after, max_columns=max_promoted_columns, max_keys=max_catalog_keys
            )
            self._catalog = KeyCatalog(
                keys, reserved=layout.RESERVED, protected=documented_fields(), **catalog_limits
            )
            span_keys = _load_catalog(conn, layout.SPAN_CATALOG_TABLE)
            #: Span attribute keys (``spans.py``); the same limits, a catalog of their own.
            self.span_catalog = KeyCatalog(span_keys, reserved=layout.SPAN_RESERVED, **catalog_limits)
            self._span_columns = layout.span_view_columns(span_keys)
            self._schema = layout.view_statements(keys)[1]
            self._count = int(_scalar(conn, f"SELECT count(*) FROM {EVENTS_TABLE}"))
            # The high-water mark survives retention emptying the table: a tail cursor never goes back.
            newest = int(_scalar(conn, f"SELECT coalesce(max({SEQ}), 0) FROM {EVENTS_TABLE}"))
            mark = _scalar(conn, f"SELECT value FROM {layout.META_TABLE} WHERE key = 'last_seq'")
            self._next_seq = max(newest, int(mark or 0)) + 1
            if not read_only:
                make_private(self._wal)
            conn.execute("SET lock_configuration = true")
            self._read_root = conn.cursor()
        except BaseException:
            conn.close()
            raise
        self._checkpoint_min_wal = min(limits.STORE_IDLE_CHECKPOINT_MIN_WAL_BYTES, checkpoint_threshold_bytes)
        self.duplicates_skipped = 0
        self.rows_written = 0
        self.spans_written = 0
        self.last_commit_ms = 0.0
        self._writer: WriterThread[Prepared] | None = None
        self._span_commits: spans.SpanCommits | None = None
        if read_only:
            self._read_only_conn = conn
        else:
            self._writer = WriterThread(
                conn,
                self._commit,
                max_rows=max_rows_per_commit,
                on_idle=self._idle_checkpoint,
                idle_seconds=idle_checkpoint_seconds,
            )
            self._span_commits = spans.SpanCommits(
                self._writer.call, self.span_catalog, self._adopt_span_schema, max_rows=max_rows_per_commit
            )

    # -- opening -----------------------------------------------------------------------------------

    def _open_schema(self, conn: Any) -> list[KeyInfo]:
        """Create or upgrade the schema (read-write) or check it (read-only); return the catalog."""
        tables = {row[0] for row in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        version: int | None = None
        if layout.META_TABLE in tables:
            found = conn.execute(
                f"SELECT value FROM {layout.META_TABLE} WHERE key = 'schema_version'"
            ).fetchone()
            version = int(found[0]) if found else None
        if version is not None and version > layout.SCHEMA_VERSION:
            raise StoreError(
                f"the event store {self.path} has schema version {version}, newer than this opswatch "
                f"understands ({layout.SCHEMA_VERSION}); upgrade opswatch"
            )
        if self.read_only:
            if version is None:
                raise StoreError(f"{self.path} is not an opswatch event store")
            if version < layout.SCHEMA_VERSION:
                raise StoreError(
                    f"the event store {self.path} has schema version {version}; start the server once "
                    f"to upgrade it to {layout.SCHEMA_VERSION}"
                )
            self.rollups_enabled = self.rollups_enabled and rollups.TABLE in tables
            return _load_catalog(conn)
        conn.execute("BEGIN TRANSACTION")
        try:
            if version is None:
                if EVENTS_TABLE in tables:
                    raise StoreError(f"{self.path} holds an {EVENTS_TABLE} table but no schema version")
                conn.execute(f"CREATE TABLE {layout.META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
                for statement in layout.create_statements():
                    conn.execute(statement)
                version = layout.SCHEMA_VERSION
                conn.execute(
                    f"INSERT INTO {layout.META_TABLE} VALUES ('schema_version', ?), ('created_at', ?)",
                    [str(version), format_timestamp(self._clock())],
                )
            while version < layout.SCHEMA_VERSION:
                layout.MIGRATIONS[version](conn)
                version += 1
                conn.execute(
                    f"UPDATE {layout.META_TABLE} SET value = ? WHERE key = 'schema_version'", [str(version)]
                )
            keys = _load_catalog(conn)
            for statement in [*layout.view_statements(keys)[0], *layout.span_table_statements()]:
                conn.execute(statement)
            for statement in layout.span_view_statements(_load_catalog(conn, layout.SPAN_CATALOG_TABLE))[0]:
                conn.execute(statement)
            self._rollup_part = rollups.open_rollups(conn, self.rollups_enabled)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return keys

    # -- writing -----------------------------------------------------------------------------------

    def append(self, records: Sequence[Record]) -> int:
        """Store ``records`` durably; return how many were new.

        Blocks until the group commit holding them is done. A record whose ``(project_id, event_id)``
        is already stored (or earlier in the same call) is skipped, whatever its timestamp: retrying a
        batch stores nothing twice, and one project's event id never hides another's. Records are not
        changed. Raises ``StoreClosed`` after ``close`` or on a read-only store.
        """
        return len(self.append_new(records))

    def append_new(self, records: Sequence[Record]) -> list[int]:
        """``append``, answering which records were new: their positions in ``records``, in order."""
        writer = self._writer
        if writer is None:
            raise StoreClosed("the event store was opened read-only")
        if not records:
            return []
        prepared = prepare(records, format_timestamp(self._clock()), self._catalog.placements)
        kept: list[int] = writer.append(prepared, len(prepared)).result()
        return kept

    def _commit(self, conn: Any, batches: Sequence[Prepared]) -> list[list[int]]:
        """One transaction for the merged appends (runs on the writer thread); per append, the positions
        of its new records.

        The prepared appends are not changed (a failed group is retried append by append): slow rows
        with pending values are copied when they are placed, and ``seq`` is set afresh on every attempt.
        """
        started = time.perf_counter()
        keys: list[Key] = []
        hashes: list[int] = []
        for batch in batches:
            keys += batch.identities()
            hashes += batch.hashes
        submitted = len(keys)
        now = format_timestamp(self._clock())
        conn.execute("BEGIN TRANSACTION")
        try:
            stored = stored_keys(conn, keys, hashes, now[:10])
            fast_skips, slow_skips, kept = survivors(batches, keys, stored)
            slow = [
                pair
                for batch, skip in zip(batches, slow_skips, strict=True)
                for slot, pair in enumerate(zip(batch.slow_rows, batch.slow_pending, strict=True))
                if slot not in skip
            ]
            with_rest = [(row, rest) for row, rest in slow if rest]
            plan = self._catalog.plan(
                [(row["timestamp"], rest) for row, rest in with_rest],
                [row.get("project_id") for row, _ in with_rest],
            )
            schema = apply_plan(conn, plan)
            first = self._next_seq
            pairs = list(zip(batches, fast_skips, strict=True))
            fast_count = sum(len(batch.ids) - len(skip) for batch, skip in pairs)
            seqs: int | list[int] = first
            slow_seqs: Sequence[int] = range(first + fast_count, first + fast_count + len(slow))
            if slow:  # number everything in arrival order
                seqs, slow_seqs = arrival_seqs(batches, fast_skips, slow_skips, first)
            if fast_count:
                chunks = [batch.fast_lines(skip) for batch, skip in pairs if len(skip) < len(batch.ids)]
                insert_fast(conn, b"\n".join(chunks), seqs, plan.keys, now)
            if slow:
                lower = self._catalog.lower
                rows = [place(row, rest, plan.keys, lower) if rest else dict(row) for row, rest in slow]
                for row, number in zip(rows, slow_seqs, strict=True):
                    row[SEQ] = number
                insert_rows(conn, rows, plan.keys)
            seq = first + fast_count + len(slow)
            rolled = 0
            if self.rollups_enabled:
                rolled = rollups.add(conn, first, seq, self._rollup_part + 1)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                conn.execute("ROLLBACK")
            raise
        make_private(self._wal)  # a WAL DuckDB made after a checkpoint has the umask's mode; one syscall
        self._catalog.adopt(plan)
        if schema is not None:
            self._schema = schema
        stored_now = seq - self._next_seq
        self.data_version += 1
        self._next_seq = seq
        self._count += stored_now
        self.rows_written += stored_now
        self.duplicates_skipped += submitted - stored_now
        if rolled:
            self._rollup_part += 1
            self._rollup_rows_since_compaction += rolled
            if self._rollup_rows_since_compaction >= self._rollup_compact_rows:
                # The events are committed: a failed merge must not fail the append (tried again later).
                with contextlib.suppress(duckdb.Error):
                    self._compact_rollups(conn)
        self.last_commit_ms = (time.perf_counter() - started) * 1000
        return kept

    def _compact_rollups(self, conn: Any) -> None:
        """Merge the rollup rows written since the last merge (``rollups.compact``; writer thread)."""
        self._rollup_part += 1
        rollups.compact(conn, self._rollup_part)
        self._rollup_rows_since_compaction = 0

    def compact_rollups(self) -> None:
        """Merge the rollup rows written since the last merge now (the writer also does it by itself)."""
        writer = self._writer
        if writer is not None and self.rollups_enabled:
            writer.call(self._compact_rollups)

    def _idle_checkpoint(self, conn: Any) -> None:
        if self._rollup_rows_since_compaction:
            self._compact_rollups(conn)
        try:
            size = self._wal.stat().st_size
        except OSError:
            return
        if size >= self._checkpoint_min_wal:
            conn.execute("CHECKPOINT")

    def delete_older_than(self, days: int) -> int:
        """Delete events whose timestamp is more than ``days`` days before now; return how many went.

        Also drops idempotency keys that arrived before that day. Checkpoints afterwards, so the freed
        space is reused by later appends.
        """
        writer, cutoff = self._retention_cutoff(days)

        def work(conn: Any) -> int:
            sql = f"DELETE FROM {EVENTS_TABLE} WHERE {quote('timestamp')} < ?::TIMESTAMP"
            conn.execute("BEGIN TRANSACTION")
            try:
                deleted = int(_scalar(conn, sql, [cutoff]))
                if self.rollups_enabled:  # the rollup keeps summarising exactly the stored events
                    self._rollup_part += 1
                    rollups.expire(conn, cutoff, self._rollup_part)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute(f"DELETE FROM {layout.KEYS_TABLE} WHERE day < ?::DATE", [cutoff[:10]])
            if deleted:
                self.data_version += 1
                self._count -= deleted
                mark = str(self._next_seq - 1)
                conn.execute(f"INSERT OR REPLACE INTO {layout.META_TABLE} VALUES ('last_seq', ?)", [mark])
                # A reader may hold the checkpoint off; the next one frees the space then.
                with contextlib.suppress(duckdb.Error):
                    conn.execute("CHECKPOINT")
            return deleted

        return writer.call(work)

    def append_spans(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store span rows durably (``spans.py`` says their shape); return how many were new.

        Runs on the writer thread, in one transaction with the span batches of other callers waiting at
        the same time (``spans.SpanCommits``); a span whose (project_id, trace_id, span_id) is already
        stored is skipped. Raises ``StoreClosed`` as ``append`` does.
        """
        writer = self._writer
        if writer is None:
            raise StoreClosed("the event store was opened read-only")
        if not rows:
            return 0
        assert self._span_commits is not None  # made with the writer
        count = self._span_commits.append(rows)
        self.spans_written += count
        return count

    def _adopt_span_schema(self, schema: SchemaInfo) -> None:
        self._span_columns = schema.columns

    def delete_spans_older_than(self, days: int) -> int:
        """Span retention: delete spans that started more than ``days`` days ago; return how many went."""
        writer, cutoff = self._retention_cutoff(days)
        return writer.call(lambda conn: spans.delete_spans_before(conn, cutoff))

    def _retention_cutoff(self, days: int) -> tuple[WriterThread[Prepared], str]:
        """The writer and the RFC 3339 time ``days`` days ago; raises for bad days or a read-only store."""
        cutoff = retention_cutoff(days, self._clock())
        writer = self._writer
        if writer is None:
            raise StoreClosed("the event store was opened read-only")
        return writer, cutoff

    def checkpoint(self) -> None:
        """Write the WAL into the file now (the writer also does this by itself when idle)."""
        writer = self._writer
        if writer is not None:
            writer.call(lambda conn: conn.execute("CHECKPOINT"))

    # -- reading -----------------------------------------------------------------------------------

    def _cursor(self) -> Any:
        with self._read_lock:
            if self._closed:
                raise StoreClosed("the event store is closed")
            return self._read_root.cursor()

    def describe(self) -> SchemaInfo:
        """The views SQL may read (``logs``, ``events``, ``spans``), their columns and camelCase aliases."""
        return layout.with_spans(self._schema, self._span_columns) if self._has_spans else self._schema

    def query(
        self, sql: str, *, max_rows: int, timeout: float, max_bytes: int = limits.QUERY_MAX_ANSWER_BYTES
    ) -> QueryResult:
        """Run one statement on a fresh cursor, within the limits ``_query.Queries.run`` describes.

        The SQL is not checked here: callers pass SQL checked by ``opswatch.server.query`` or their own.
        """
        return self._queries.run(self._cursor, sql, max_rows=max_rows, timeout=timeout, max_bytes=max_bytes)

    def read_rollups(
        self, request: rollups.RollupRequest, *, max_groups: int, timeout: float
    ) -> rollups.RollupAnswer | None:
        """The rollup's answer to ``request`` (``rollups.read_sql``), None when this store keeps none.

        At most ``max_groups`` groups (``truncated`` past them); ``QueryError``/``QueryTimeout`` as ``query``.
        """
        if not self.rollups_enabled:
            return None
        sql = rollups.read_sql(request)
        result = self._queries.run(
            self._cursor, sql, max_rows=limits.QUERY_MAX_ROWS * 10, timeout=timeout,
            max_bytes=limits.QUERY_MAX_ANSWER_BYTES,
        )
        found = rollups.answer(result.rows, request, max_groups)
        return rollups.RollupAnswer(found.groups, found.truncated or result.truncated)

    def _physical(self) -> tuple[list[str], dict[str, KeyInfo]]:
        promoted = {info.column: info for info in self._catalog.keys.values() if info.column}
        return [SEQ, *layout.CORE_NAMES, CONTAINER, *promoted], promoted

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
        """Records stored after cursor ``after``, oldest first (see ``EventStore.tail``).

        With ``after`` None: the latest ``limit`` matching records, and a cursor at the newest stored
        event. Raises ``ValueError`` for an unknown level or a limit outside 1..``TAIL_MAX_LIMIT``.
        """
        if not 1 <= limit <= limits.TAIL_MAX_LIMIT:
            raise ValueError(f"limit must be 1..{limits.TAIL_MAX_LIMIT}, got {limit}")
        where: list[str] = []
        params: list[Any] = []
        if level is not None:
            floor = parse_level(level)
            where.append("level IN (SELECT unnest(?::VARCHAR[]))")
            params.append([name for number, name in LEVEL_NAMES.items() if number >= floor])
        if operation:
            if operation.endswith("*"):
                where.append("starts_with(operation, ?)")
                params.append(operation[:-1])
            else:
                where.append("operation = ?")
                params.append(operation)
        if text:
            where.append("contains(lower(message), ?)")
            params.append(text.lower())
        if project_id is not None:
            where.append("project_id = ?")
            params.append(project_id)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        columns, promoted = self._physical()
        select = ", ".join(quote(c) for c in columns)
        cursor = self._cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            newest = int(_scalar(cursor, f"SELECT coalesce(max({SEQ}), 0) FROM {EVENTS_TABLE}"))
            if after is None:
                condition = " AND ".join(where) or "true"
                found = cursor.execute(
                    f"SELECT {select} FROM {EVENTS_TABLE} WHERE {condition} "
                    f"ORDER BY {SEQ} DESC LIMIT {limit}",
                    params,
                ).fetchall()
                found.reverse()
                next_cursor = newest
            else:
                condition = " AND ".join([f"{SEQ} > ?", *where])
                found = cursor.execute(
                    f"SELECT {select} FROM {EVENTS_TABLE} WHERE {condition} ORDER BY {SEQ} LIMIT {limit}",
                    [after, *params],
                ).fetchall()
                next_cursor = found[-1][0] if len(found) == limit else max(after, newest)
            cursor.execute("COMMIT")
        finally:
            cursor.close()
        records = [to_record(row[1:], columns[1:], promoted) for row in found]
        return TailPage(records=records, cursor=int(next_cursor))

    def get_events(self, event_ids: Sequence[str], *, project_id: int | None = None) -> dict[str, Record]:
        """The stored records with these event ids (at most ``TAIL_MAX_LIMIT`` ids), by event id."""
        ids = [event_id for event_id in dict.fromkeys(event_ids) if isinstance(event_id, str)]
        if not ids:
            return {}
        if len(ids) > limits.TAIL_MAX_LIMIT:
            raise ValueError(f"at most {limits.TAIL_MAX_LIMIT} event ids per call, got {len(ids)}")
        columns, promoted = self._physical()
        select = ", ".join(quote(c) for c in columns)
        # Two steps: the event_id column alone finds the rows' seq numbers, then the rows are read by
        # seq, which the zone maps find at once. Reading every column while filtering on event_id cost
        # 3x as much on 5 M events.
        wanted = ", ".join(layout.literal(event_id) for event_id in ids)
        where = f"event_id IN ({wanted})"
        if project_id is not None:
            where += f" AND project_id = {int(project_id)}"
        cursor = self._cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            matches = cursor.execute(f"SELECT {SEQ} FROM {EVENTS_TABLE} WHERE {where}").fetchall()
            seqs = [row[0] for row in matches]
            found: list[tuple[Any, ...]] = []
            if seqs:
                numbers = ", ".join(str(seq) for seq in seqs)
                found = cursor.execute(
                    f"SELECT {select} FROM {EVENTS_TABLE} WHERE {SEQ} IN ({numbers}) ORDER BY {SEQ}"
                ).fetchall()
            cursor.execute("COMMIT")
        finally:
            cursor.close()
        records = (to_record(row[1:], columns[1:], promoted) for row in found)
        return {record["event_id"]: record for record in records}

    # -- the rest ----------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters for ``/metrics`` and ``opswatch serve``: events stored, file sizes, queue, catalog."""
        writer = self._writer
        wal = Path(str(self.path) + ".wal")
        return {
            "events": self._count,
            "file_bytes": _size(self.path),
            "wal_bytes": _size(wal),
            "queue_depth": writer.pending_items if writer else 0,
            "queue_rows": writer.pending_rows if writer else 0,
            "commits": writer.commits if writer else 0,
            "rows_written": self.rows_written,
            "spans_written": self.spans_written,
            "duplicates_skipped": self.duplicates_skipped,
            "last_commit_ms": self.last_commit_ms,
            "attribute_keys": len(self._catalog.keys),
            "promoted_columns": self._catalog.promoted_count,
            "schema_version": layout.SCHEMA_VERSION,
        }

    def close(self) -> None:
        """Commit everything queued, then release the file (idempotent)."""
        with self._read_lock:
            if self._closed:
                return
            self._closed = True
        self._queries.wait()
        with self._read_lock:
            self._read_root.close()
        if self._writer is not None:
            self._writer.close()
        else:
            self._read_only_conn.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_catalog(conn: Any, table: str = layout.CATALOG_TABLE) -> list[KeyInfo]:
    exists = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()
    if not exists or not exists[0]:
        return []  # a read-only open of a file from before span attribute keys
    found = conn.execute(
        f"SELECT key, name, type, column_name, seen, cold_first, cold_last, project_id FROM {table}"
    ).fetchall()
    return [KeyInfo(*row) for row in found]


def _scalar(conn: Any, sql: str, params: list[Any] | None = None) -> Any:
    row = conn.execute(sql, params or []).fetchone()
    return row[0] if row else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _positive(name: str, value: int | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(name, f"expected a whole number >= {low}, got {value!r}")
