"""The spans table's write path: idempotent inserts and retention, on the writer's connection.

Spans reach ``DuckDBStore.append_spans`` as dicts keyed by the columns of ``layout.SPAN_COLUMNS``
(``opswatch.server.traces.model`` builds them): ``timestamp`` and ``received_at`` as RFC 3339 UTC text,
ids as lower-case hex, ``attributes``/``events``/``links`` as JSON values. Everything here runs on the
store's single writer thread, inside the transaction it opens.

Idempotency by (project_id, trace_id, span_id): a retried span carries the same start, so the stored
keys are looked up among spans whose ``timestamp`` lies in the batch's range (the zone maps on
``timestamp`` keep that to a few row groups, as for events), and only the others are inserted.

Span attribute keys go through their own key catalog (``layout.py``): each commit plans the keys of
its new spans, adds and fills promoted columns, rebuilds the ``spans`` view when it changed, and copies
promoted values into their columns.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import duckdb
import orjson

from . import layout
from ._write import apply_plan
from .base import SchemaInfo
from .catalog import KeyCatalog, KeyInfo, Plan, coerce
from .layout import SPANS_TABLE, quote
from .rows import json_lines

T = TypeVar("T")

#: The identity of a span.
SpanKey = tuple[int, str, str]


def span_key(span: dict[str, Any]) -> SpanKey:
    """(project_id, trace_id, span_id) of a span row."""
    return (int(span["project_id"]), str(span["trace_id"]), str(span["span_id"]))


def insert_span_groups(
    conn: Any, groups: Sequence[Sequence[dict[str, Any]]], catalog: KeyCatalog
) -> tuple[list[int], Plan, SchemaInfo | None]:
    """Insert the spans not stored yet (nor earlier in the batches), for several callers' batches at once
    (one look-up, one insert), inside the caller's transaction. Answers per batch how
    many of its spans were new (a span in two batches counts for the first); the catalog plan the
    caller adopts once committed; and the ``spans`` view's new schema when it changed."""
    fresh: dict[SpanKey, dict[str, Any]] = {}
    owner: dict[SpanKey, int] = {}
    for number, spans in enumerate(groups):
        for span in spans:
            key = span_key(span)
            if key not in fresh:
                fresh[key] = span
                owner[key] = number
    counts = [0] * len(groups)
    if not fresh:
        return counts, Plan(keys=catalog.keys), None
    stamps = [str(span["timestamp"]) for span in fresh.values()]
    column = quote("timestamp")
    found = conn.execute(
        f"SELECT project_id, trace_id, span_id FROM {SPANS_TABLE} "
        f"WHERE {column} >= ?::TIMESTAMP AND {column} <= ?::TIMESTAMP "
        "AND trace_id IN (SELECT unnest(?::VARCHAR[]))",
        [min(stamps), max(stamps), sorted({key[1] for key in fresh})],
    ).fetchall()
    for row in found:
        fresh.pop((int(row[0]), row[1], row[2]), None)
    plan = plan_keys(catalog, fresh.values())
    if not fresh:
        return counts, plan, None
    schema = apply_plan(
        conn,
        plan,
        table=SPANS_TABLE,
        catalog_table=layout.SPAN_CATALOG_TABLE,
        views=layout.span_view_statements,
    )
    # Promoted values are read out of ``attributes`` by DuckDB, not copied in Python: no Python time
    # per span.
    promoted = [info for info in plan.keys.values() if info.column]
    structure = orjson.dumps({c.name: c.sql_type for c in layout.SPAN_COLUMNS}).decode()
    names = ", ".join(quote(name) for name in (*layout.SPAN_NAMES, *(str(i.column) for i in promoted)))
    picks = ", ".join((*map(quote, layout.SPAN_NAMES), *(f"p.{quote(i.name)}" for i in promoted)))
    # The promoted keys are read out of each span's attributes in one parse, typed by the catalog
    # (a struct of them), rather than with one extraction per key.
    keys = orjson.dumps({info.name: layout.sql_type(info) for info in promoted}).decode()
    parsed = f"from_json(attributes, {layout.literal(keys)})" if promoted else "NULL"
    conn.execute(
        f"INSERT INTO {SPANS_TABLE} ({names}) SELECT {picks} FROM (SELECT *, {parsed} AS p FROM "
        f"(SELECT unnest(from_json(line, {layout.literal(structure)})) FROM "
        "(SELECT unnest(string_split(?, chr(10))) AS line)))",
        [json_lines(list(fresh.values())).decode()],
    )
    for key in fresh:
        counts[owner[key]] += 1
    return counts, plan, schema


def plan_keys(catalog: KeyCatalog, spans: Iterable[dict[str, Any]]) -> Plan:
    """The span attribute catalog's plan for spans about to be stored (both engines)."""
    attributed = [span for span in spans if span.get("attributes")]
    return catalog.plan(
        [(span["timestamp"], span["attributes"]) for span in attributed],
        [span.get("project_id") for span in attributed],
    )


def with_promoted(
    spans: Iterable[dict[str, Any]], keys: Mapping[str, KeyInfo], lower: Callable[[str], str]
) -> list[dict[str, Any]]:
    """The spans with each promoted attribute's value copied to its column (``attributes`` keeps it
    too; ``layout.py`` says why), for ClickHouse's insert (DuckDB's extracts them in SQL). The spans
    given are not changed."""
    promoted = {key: info for key, info in keys.items() if info.column is not None}
    if not promoted:
        return list(spans)
    out: list[dict[str, Any]] = []
    for span in spans:
        row = span
        for name, value in (span.get("attributes") or {}).items():
            info = promoted.get(lower(name))
            if info is not None and value is not None:
                if row is span:
                    row = dict(span)
                row[info.column] = coerce(value, info.type)  # type: ignore[index]
        out.append(row)
    return out


class SpanCommits:
    """Group commit for span batches: callers that arrive while a commit waits for the writer join it.

    ``append(rows)`` queues the batch; the first caller of a group asks the writer thread (``run``, the
    store's ``WriterThread.call``) for one transaction that inserts every batch queued by then (up to
    ``max_rows`` spans; the rest wait for the next one). Under load many concurrent OTLP requests cost
    one look-up, one insert and one WAL sync instead of one each. When the merged transaction fails,
    each batch is tried alone, so a bad batch fails only its own caller. Returns how many spans of the
    batch were new.
    """

    def __init__(
        self,
        run: Callable[[Callable[[Any], None]], None],
        catalog: KeyCatalog,
        on_schema: Callable[[SchemaInfo], None] | None = None,
        *,
        max_rows: int,
    ) -> None:
        self._run = run
        self._catalog = catalog
        self._on_schema = on_schema
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._queued: list[tuple[Sequence[dict[str, Any]], Future[int]]] = []
        self._scheduled = False
        #: Transactions committed (a group counts once).
        self.commits = 0

    def append(self, rows: Sequence[dict[str, Any]]) -> int:
        future: Future[int] = Future()
        with self._lock:
            self._queued.append((rows, future))
            lead = not self._scheduled
            self._scheduled = True
        if lead:
            try:
                self._run(self._commit_queued)
            except BaseException as err:  # the writer is closed: fail everyone still queued
                with self._lock:
                    queued, self._queued, self._scheduled = self._queued, [], False
                for _, waiting in queued:
                    waiting.set_exception(err)
        return future.result()

    def _commit_queued(self, conn: Any) -> None:
        """On the writer thread: commit what is queued, in groups of at most ``max_rows`` spans."""
        while True:
            with self._lock:
                group: list[tuple[Sequence[dict[str, Any]], Future[int]]] = []
                size = 0
                while self._queued and (not group or size + len(self._queued[0][0]) <= self._max_rows):
                    group.append(self._queued.pop(0))
                    size += len(group[-1][0])
                if not group:
                    self._scheduled = False
                    return
            self._commit_group(conn, group)

    def _commit_group(self, conn: Any, group: list[tuple[Sequence[dict[str, Any]], Future[int]]]) -> None:
        try:
            counts, plan, schema = _in_transaction(
                conn, lambda: insert_span_groups(conn, [rows for rows, _ in group], self._catalog)
            )
        except BaseException as err:
            if len(group) == 1:
                group[0][1].set_exception(err)
                return
            for one in group:
                self._commit_group(conn, [one])
            return
        self.commits += 1
        self._catalog.adopt(plan)
        if schema is not None and self._on_schema is not None:
            self._on_schema(schema)
        for (_, future), count in zip(group, counts, strict=True):
            future.set_result(count)


def _in_transaction(conn: Any, work: Callable[[], T]) -> T:
    conn.execute("BEGIN TRANSACTION")
    try:
        result = work()
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        raise
    return result


def delete_spans_before(conn: Any, cutoff: str) -> int:
    """Delete spans that started before ``cutoff`` (RFC 3339 text); return how many went."""
    row = conn.execute(
        f"DELETE FROM {SPANS_TABLE} WHERE {quote('timestamp')} < ?::TIMESTAMP", [cutoff]
    ).fetchone()
    return int(row[0]) if row else 0


def has_spans_table(conn: Any) -> bool:
    """Whether the file has the spans table (a read-only open of an older file may not)."""
    row = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [SPANS_TABLE]).fetchone()
    return bool(row and row[0])
