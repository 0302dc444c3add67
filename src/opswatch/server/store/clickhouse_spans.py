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
from collections.abc import Sequence
from typing import Any, Final

import orjson

from .clickhouse_client import Client, TransportError, string_literal
from .clickhouse_layout import DEDUP_WINDOW
from .layout import SPAN_COLUMNS, SPAN_NAMES, SPANS_TABLE, SPANS_VIEW, quote
from .spans import SpanKey, span_key

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


def span_statements() -> list[str]:
    """DDL for the spans table and view (``IF NOT EXISTS`` / ``OR REPLACE``: run on every open)."""
    columns = ",\n  ".join(
        f"{quote(c.name)} {_REQUIRED.get(c.name) or _TYPES[c.sql_type]}" for c in SPAN_COLUMNS
    )
    names = ", ".join(quote(name) for name in SPAN_NAMES)
    end = (
        f"{quote('timestamp')} + toIntervalMicrosecond(toInt64(round(coalesce({quote('duration_ms')}, 0) "
        f"* 1000))) AS {quote('end_timestamp')}"
    )
    return [
        f"CREATE TABLE IF NOT EXISTS {SPANS_TABLE} (\n  {columns}\n)\n"
        "ENGINE = ReplacingMergeTree\nPARTITION BY toDate(timestamp)\n"
        "ORDER BY (project_id, trace_id, span_id)\n"
        "SETTINGS fsync_after_insert = 1, fsync_part_directory = 1, "
        f"non_replicated_deduplication_window = {DEDUP_WINDOW}",
        f"CREATE OR REPLACE VIEW {SPANS_VIEW} AS SELECT {names}, {end} FROM {SPANS_TABLE}",
    ]


def insert_spans(client: Client, spans: Sequence[dict[str, Any]], settings: dict[str, Any]) -> int:
    """Insert the spans not stored yet (nor earlier in ``spans``); return how many were inserted.

    The caller serializes writes (one writer); ``settings`` are its write settings.
    """
    fresh: dict[SpanKey, dict[str, Any]] = {}
    for span in spans:
        fresh.setdefault(span_key(span), span)
    for key in _stored(client, set(fresh)):
        del fresh[key]
    if not fresh:
        return 0
    rows = [_row(span) for span in fresh.values()]
    lines = b"\n".join(orjson.dumps(row) for row in rows)
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


def _row(span: dict[str, Any]) -> dict[str, Any]:
    """A span as one ``JSONEachRow`` object: its columns, JSON values as JSON text."""
    row = {name: span.get(name) for name in SPAN_NAMES}
    for name in _JSON_COLUMNS:
        if row[name] is not None:
            row[name] = orjson.dumps(row[name], default=str).decode()
    return row
