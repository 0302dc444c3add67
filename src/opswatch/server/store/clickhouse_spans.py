"""Spans on ClickHouse: the ``span_rows`` table, the ``spans`` view, idempotent inserts and retention.

The rows are those ``DuckDBStore.append_spans`` takes (``layout.SPAN_COLUMNS``, built by
``opswatch.server.traces.model.span_row``), and the view shows the same columns under the same names
(``layout.with_spans`` describes it on both engines)::

    span_rows   ReplacingMergeTree, PARTITION BY toDate(timestamp), ORDER BY (project_id, trace_id, span_id)
      timestamp     DateTime64(6, 'UTC')   the start, to the microsecond (as DuckDB's TIMESTAMP)
      received_at   DateTime64(3, 'UTC')
      trace_id, span_id, project_id        the identity, never NULL
      attributes, events, links            Nullable(String) holding JSON text (read with ``->>``)
    spans       view: the columns, plus ``end_timestamp`` (start + duration)

Idempotency by (project_id, trace_id, span_id), as for events (``clickhouse_layout.py``): the sorting
key is the identity, the one writer looks up a batch's keys (``project_id = p AND trace_id IN ...``, a
primary-key read) and inserts only the others, with an ``insert_deduplication_token`` for an answer that
was lost; ``ReplacingMergeTree`` is the backstop for racing writers. Retention deletes by the start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import orjson

from .catalog import JSON, KeyCatalog, KeyInfo, Plan
from .clickhouse_client import Client, TransportError, string_literal
from .clickhouse_layout import DEDUP_WINDOW, catalog_ddl, cold_expression
from .layout import (
    SPAN_CATALOG_TABLE,
    SPAN_COLUMNS,
    SPAN_NAMES,
    SPANS_TABLE,
    SPANS_VIEW,
    quote,
    span_view_columns,
)
from .rows import json_lines, wide_ints_as_text
from .spans import SpanKey, plan_keys, span_key, with_promoted

#: ClickHouse types of the span columns, by DuckDB type; the identity and the start are never NULL.
_TYPES: Final = {
    "TIMESTAMP": "Nullable(DateTime64(3, 'UTC'))",
    "DOUBLE": "Nullable(Float64)",
    "VARCHAR": "Nullable(String)",
    "INTEGER": "Nullable(Int32)",
    "JSON": "Nullable(String)",
}
_REQUIRED: Final = {
    "timestamp": "DateTime64(6, 'UTC')",
    "trace_id": "String",
    "span_id": "String",
    "project_id": "Int32",
}
_JSON_COLUMNS: Final = tuple(column.name for column in SPAN_COLUMNS if column.sql_type == "JSON")


def span_statements(keys: Iterable[KeyInfo] = ()) -> list[str]:
    """DDL for the spans table, its key catalog and view (``IF NOT EXISTS`` / ``OR REPLACE``)."""
    return [*span_table_statements(), *span_view_statements(keys)[0]]


def span_table_statements() -> list[str]:
    """DDL for the spans table and its key catalog (``IF NOT EXISTS``: run on every open)."""
    columns = ",\n  ".join(
        f"{quote(c.name)} {_REQUIRED.get(c.name) or _TYPES[c.sql_type]}" for c in SPAN_COLUMNS
    )
    return [
        f"CREATE TABLE IF NOT EXISTS {SPANS_TABLE} (\n  {columns}\n)\n"
        "ENGINE = ReplacingMergeTree\nPARTITION BY toDate(timestamp)\n"
        "ORDER BY (project_id, trace_id, span_id)\n"
        "SETTINGS fsync_after_insert = 1, fsync_part_directory = 1, "
        f"non_replicated_deduplication_window = {DEDUP_WINDOW}",
        catalog_ddl(SPAN_CATALOG_TABLE),
    ]


def span_view_statements(keys: Iterable[KeyInfo]) -> tuple[list[str], tuple[str, ...]]:
    """``CREATE OR REPLACE VIEW spans`` and its columns: DuckDB's columns (``layout.span_view_columns``),
    ClickHouse's expressions (a cold key read from the ``attributes`` JSON text)."""
    keys = list(keys)
    columns = span_view_columns(keys)
    infos = {info.name: info for info in keys}
    end = (
        f"{quote('timestamp')} + toIntervalMicrosecond(toInt64(round(coalesce({quote('duration_ms')}, 0) "
        f"* 1000))) AS {quote('end_timestamp')}"
    )
    select: list[str] = []
    for name in columns:
        info = infos.get(name)
        if name == "end_timestamp":
            select.append(end)
        elif info is None:
            select.append(quote(name))
        else:
            select.append(f"{quote(info.column) if info.column else cold_expression(info)} AS {quote(name)}")
    body = ",\n  ".join(select)
    return [f"CREATE OR REPLACE VIEW {SPANS_VIEW} AS SELECT\n  {body}\nFROM {SPANS_TABLE}"], columns


def insert_spans(
    client: Client,
    spans: Sequence[dict[str, Any]],
    settings: dict[str, Any],
    catalog: KeyCatalog,
    apply: Callable[[Plan], None],
) -> int:
    """Insert the spans not stored yet (nor earlier in ``spans``); return how many were inserted.

    The caller serializes writes (one writer); ``settings`` are its write settings. The span attribute
    keys of the new spans are planned in ``catalog``; ``apply`` does the plan's schema work (columns,
    backfill, catalog rows, the view) before the insert, and the plan is adopted.
    """
    fresh: dict[SpanKey, dict[str, Any]] = {}
    for span in spans:
        fresh.setdefault(span_key(span), span)
    for key in _stored(client, set(fresh)):
        del fresh[key]
    if not fresh:
        return 0
    plan = plan_keys(catalog, fresh.values())
    apply(plan)
    catalog.adopt(plan)
    promoted = {info.column: info.type for info in plan.keys.values() if info.column}
    rows = [_row(span, promoted) for span in with_promoted(fresh.values(), plan.keys, catalog.lower)]
    lines = json_lines(rows)
    digest = hashlib.sha256(b"spans\n")
    for project, trace, span_id in fresh:
        digest.update(f"{project}/{trace}/{span_id}\n".encode())
    token = {**settings, "insert_deduplicate": 1, "insert_deduplication_token": digest.hexdigest()}
    try:
        client.insert_json(SPANS_TABLE, lines, token)
    except TransportError:  # the block may have landed: the same token makes the server drop a copy
        client.insert_json(SPANS_TABLE, lines, token)
    return len(rows)


def delete_spans_before(client: Client, cutoff: str, settings: dict[str, Any]) -> int:
    """Delete spans that started before ``cutoff`` (RFC 3339 text); return how many went."""
    condition = f"timestamp < parseDateTime64BestEffort({string_literal(cutoff)}, 6, 'UTC')"
    _, found = client.query(f"SELECT count() FROM {SPANS_TABLE} WHERE {condition}")
    deleted = int(found[0][0]) if found else 0
    if deleted:
        client.command(f"ALTER TABLE {SPANS_TABLE} DELETE WHERE {condition}", settings)
    return deleted


def _stored(client: Client, keys: set[SpanKey]) -> set[SpanKey]:
    """Which of these (project_id, trace_id, span_id) keys are stored (a primary-key read)."""
    traces: dict[int, set[str]] = {}
    for project, trace, _ in keys:
        traces.setdefault(project, set()).add(trace)
    found: set[SpanKey] = set()
    for project, ids in sorted(traces.items()):
        ordered = sorted(ids)
        for start in range(0, len(ordered), 1000):
            wanted = ", ".join(string_literal(trace) for trace in ordered[start : start + 1000])
            _, rows = client.query(
                f"SELECT project_id, trace_id, span_id FROM {SPANS_TABLE} "
                f"WHERE project_id = {int(project)} AND trace_id IN ({wanted})"
            )
            found.update((int(row[0]), str(row[1]), str(row[2])) for row in rows)
    return found & keys


def _row(span: dict[str, Any], promoted: dict[str, str]) -> dict[str, Any]:
    """A span as one ``JSONEachRow`` object: its columns and promoted columns, JSON values as text."""
    row = {name: span.get(name) for name in SPAN_NAMES}
    for column, kind in promoted.items():
        if column in span:
            row[column] = span[column]
            if kind == JSON:
                row[column] = _json_text(span[column])
    for name in _JSON_COLUMNS:
        if row[name] is not None:
            row[name] = _json_text(row[name])
    return row


def _json_text(value: Any) -> str:
    return orjson.dumps(wide_ints_as_text(value), default=str).decode()
