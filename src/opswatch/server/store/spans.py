"""The spans table's write path: idempotent inserts and retention, on the writer's connection.

Spans reach ``DuckDBStore.append_spans`` as dicts keyed by the columns of ``layout.SPAN_COLUMNS``
(``opswatch.server.traces.model`` builds them): ``timestamp`` and ``received_at`` as RFC 3339 UTC text,
ids as lower-case hex, ``attributes``/``events``/``links`` as JSON values. Everything here runs on the
store's single writer thread, inside the transaction it opens.

Idempotency by (project_id, trace_id, span_id): a retried span carries the same start, so the stored
keys are looked up among spans whose ``timestamp`` lies in the batch's range (the zone maps on
``timestamp`` keep that to a few row groups, as for events), and only the others are inserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from . import layout
from .layout import SPANS_TABLE, quote

#: The identity of a span.
SpanKey = tuple[int, str, str]


def span_key(span: dict[str, Any]) -> SpanKey:
    """(project_id, trace_id, span_id) of a span row."""
    return (int(span["project_id"]), str(span["trace_id"]), str(span["span_id"]))


def insert_spans(conn: Any, spans: Sequence[dict[str, Any]]) -> int:
    """Insert the spans not stored yet (nor earlier in ``spans``); return how many were inserted.

    Runs inside the caller's transaction.
    """
    fresh: dict[SpanKey, dict[str, Any]] = {}
    for span in spans:
        fresh.setdefault(span_key(span), span)
    if not fresh:
        return 0
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
    if not fresh:
        return 0
    structure = orjson.dumps({c.name: c.sql_type for c in layout.SPAN_COLUMNS}).decode()
    names = ", ".join(quote(name) for name in layout.SPAN_NAMES)
    picks = ", ".join(f"r.{quote(name)}" for name in layout.SPAN_NAMES)
    lines = b"\n".join(orjson.dumps(span) for span in fresh.values())
    conn.execute(
        f"INSERT INTO {SPANS_TABLE} ({names}) SELECT {picks} FROM (SELECT from_json(line, "
        f"{layout.literal(structure)}) AS r FROM (SELECT unnest(string_split(?, chr(10))) AS line))",
        [lines.decode()],
    )
    return len(fresh)


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
