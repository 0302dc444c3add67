"""How events are laid out in the DuckDB file, and why.

The file holds::

    event_rows      one row per event (the physical table; SQL never names it)
      seq           BIGINT     arrival order, assigned by the writer (cursor for ``tail``)
      timestamp     TIMESTAMP  event time, UTC (no time zone: comparisons with '2025-11-01' mean UTC)
      level, logger, message, operation, service, environment, release, host, event_id, kind,
      trace_id, span_id, request_id                                   VARCHAR
      pid, project_id INTEGER;  duration_ms DOUBLE;  received_at TIMESTAMP;  error JSON
      attributes    JSON       the container: every other field that has no column of its own
      a_<key> ...   BOOLEAN | BIGINT | DOUBLE | VARCHAR | JSON   promoted attribute keys
    attribute_keys  the key catalog: key, first spelling, type, column (if promoted), rows seen cold,
                    the project that first sent it
    store_meta      schema_version, and other facts about the file
    logs            the view SQL reads: common fields, one column per cataloged key (typed column
                    or a typed extraction from the container), camelCase aliases, and ``attributes``
    events          the same view under its other name

Why this shape. Measured on this machine with DuckDB 2.0 and 5 M synthetic events with 40 attribute
keys (REFERENCES.md), the seed's three queries take a median of 11 / 15-20 / 16-23 ms when attributes
are typed columns, 80 / 180-230 / 240-300 ms when they sit in one JSON column behind a view, and
12 / 92 / 35 ms as VARIANT. Every JSON row must be parsed again for every query; a typed column is read
as compressed vectors and skipped by zone maps. So the common fields are real columns, and attribute
keys that recur get real columns too, chosen by the key catalog (``catalog.py``: promotion after
``STORE_PROMOTE_AFTER`` rows, at most ``STORE_MAX_PROMOTED_COLUMNS`` columns). The long tail of rare
keys costs one JSON column and stays queryable through the view. This is the layout of SigNoz
(attribute maps plus materialized columns), PostHog (properties JSON plus materialized columns) and
Snuba (tags plus promoted columns); the difference is that promotion here is automatic.
``benchmarks/bench_query.py`` checks the result on 5 M events: the seed's queries over the ``logs`` view
take the same time as over one flat table of typed columns holding the same events (ratio 0.84-0.96;
18 / 28 / 30 ms on this shared 2-core machine). Binding the wide view costs ~2 ms per query.

A column that is NULL in most rows (a key only some operations log) costs almost nothing: DuckDB stores
a constant-NULL segment. Adding a column is a catalog change (~20 ms on 3 M rows); widening one rewrites
only that column.

Events arrive roughly in time order and are appended, so the row groups' zone maps on ``timestamp``
prune time filters, which also keeps the idempotency check cheap (see ``duckdb.py``). Event ids are
kept as text (32 hex characters compress to about the size of a UUID, and match what the SDK prints).

Spans (distributed tracing) live in a table of their own, ``span_rows``, read through the view
``spans``: a span is not a log record. It has a start and a duration instead of one instant, a parent,
a kind, a status, and three nested parts (``attributes``, ``events``, ``links``); its identity is
(project_id, trace_id, span_id), not an event id. One table per signal is the shape of every trace
store (SigNoz, Tempo's Parquet blocks, Sentry's spans dataset). The common fields are typed columns,
``timestamp`` is the span's start (so the time filters written for ``logs`` read the same way and the
zone maps prune them), and ``trace_id`` has the same text form as in ``logs`` (32 lower-case hex), so
``logs JOIN spans USING (trace_id)`` needs no conversion. Attributes, events and links are JSON for
now (promotion of recurring span attribute keys, as for logs, is the next step). Spans are written by
the same writer thread, idempotent by their identity with the same look-up as events (stored ids in the
batch's time range, no index). The table is created when a read-write store opens and it is missing
(``CREATE ... IF NOT EXISTS``), so it needs no schema version of its own and an older file gains it.

Names in SQL: DuckDB identifiers are case-insensitive, so keys are cataloged case-insensitively.
A snake_case name (``church_id``) also answers as camelCase (``churchId``) through an alias column,
unless a key with that spelling exists itself: the seed's queries name ``churchId``, ``campaignName``,
``successCount`` while Python code logs ``church_id``.

The schema version is recorded in ``store_meta``; ``MIGRATIONS`` upgrades an older file on open, and a
file from a newer opswatch is refused.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

from .base import SchemaInfo
from .catalog import BIGINT, BOOLEAN, DOUBLE, JSON, VARCHAR, KeyInfo

SCHEMA_VERSION: Final = 2

EVENTS_TABLE: Final = "event_rows"
CATALOG_TABLE: Final = "attribute_keys"
META_TABLE: Final = "store_meta"
VIEW: Final = "logs"
VIEW_ALIAS: Final = "events"
VIEWS: Final = (VIEW, VIEW_ALIAS)


@dataclasses.dataclass(frozen=True)
class CoreColumn:
    """A common field with a column of its own. ``kind`` says how a record's value is converted."""

    name: str
    sql_type: str
    kind: str  # text | int | float | timestamp | json


#: The common fields, in the order the view shows them.
CORE_COLUMNS: Final = (
    CoreColumn("timestamp", "TIMESTAMP", "timestamp"),
    CoreColumn("level", "VARCHAR", "text"),
    CoreColumn("message", "VARCHAR", "text"),
    CoreColumn("logger", "VARCHAR", "text"),
    CoreColumn("operation", "VARCHAR", "text"),
    CoreColumn("service", "VARCHAR", "text"),
    CoreColumn("environment", "VARCHAR", "text"),
    CoreColumn("release", "VARCHAR", "text"),
    CoreColumn("host", "VARCHAR", "text"),
    CoreColumn("pid", "INTEGER", "int"),
    CoreColumn("project_id", "INTEGER", "int"),
    CoreColumn("kind", "VARCHAR", "text"),
    CoreColumn("event_id", "VARCHAR", "text"),
    CoreColumn("received_at", "TIMESTAMP", "timestamp"),
    CoreColumn("trace_id", "VARCHAR", "text"),
    CoreColumn("span_id", "VARCHAR", "text"),
    CoreColumn("request_id", "VARCHAR", "text"),
    CoreColumn("duration_ms", "DOUBLE", "float"),
    CoreColumn("error", "JSON", "json"),
)
CORE_NAMES: Final = tuple(column.name for column in CORE_COLUMNS)

#: Columns of ``event_rows`` that are neither common fields nor promoted keys.
SEQ: Final = "seq"
CONTAINER: Final = "attributes"

#: Names an attribute key can never take (compared in lower case).
RESERVED: Final = frozenset({*CORE_NAMES, SEQ, CONTAINER})


def quote(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")


def camel_case(name: str) -> str | None:
    """``church_id`` -> ``churchId``; None for a name that is not snake_case with at least one ``_``."""
    if not _SNAKE.fullmatch(name):
        return None
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_case(name: str) -> str:
    """``churchId`` -> ``church_id`` (the inverse of ``camel_case`` for names it produces)."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def create_statements() -> list[str]:
    """DDL for a new, empty store (run inside the opening transaction)."""
    core = ",\n  ".join(
        f"{quote(c.name)} {c.sql_type}{' NOT NULL' if c.name in ('timestamp', 'event_id') else ''}"
        for c in CORE_COLUMNS
    )
    return [
        f"CREATE TABLE {EVENTS_TABLE} (\n  {quote(SEQ)} BIGINT NOT NULL,\n  {core},\n"
        f"  {quote(CONTAINER)} JSON\n)",
        f"CREATE TABLE {CATALOG_TABLE} (key VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, "
        "type VARCHAR NOT NULL, column_name VARCHAR, seen BIGINT NOT NULL, "
        "cold_first VARCHAR, cold_last VARCHAR, project_id INTEGER)",
    ]


def json_pointer(name: str) -> str:
    """The JSON pointer (RFC 6901) of a top-level key, as a SQL literal."""
    return literal("/" + name.replace("~", "~0").replace("/", "~1"))


def cold_expression(info: KeyInfo) -> str:
    """SQL that reads a cold key from the container as its catalog type."""
    pointer = json_pointer(info.name)
    container = quote(CONTAINER)
    if info.type == JSON:
        return f"json_extract({container}, {pointer})"
    text = f"json_extract_string({container}, {pointer})"
    if info.type == VARCHAR:
        return text
    return f"TRY_CAST({text} AS {info.type})"


def sql_type(info: KeyInfo) -> str:
    """The SQL type of a promoted key's column."""
    if info.type not in (BOOLEAN, BIGINT, DOUBLE, VARCHAR, JSON):
        raise ValueError(f"unknown attribute type {info.type!r}")
    return info.type


def view_statements(keys: Iterable[KeyInfo]) -> tuple[list[str], SchemaInfo]:
    """``CREATE OR REPLACE VIEW`` statements for ``logs`` and ``events``, and what they expose."""
    select: list[str] = [quote(name) for name in CORE_NAMES]
    columns: list[str] = list(CORE_NAMES)
    taken = {name.lower() for name in CORE_NAMES} | {CONTAINER}
    attribute_keys = sorted(
        (info for info in keys if info.key not in RESERVED), key=lambda info: (info.key, info.name)
    )
    for info in attribute_keys:
        if info.name.lower() in taken:
            continue
        expression = quote(info.column) if info.column else cold_expression(info)
        select.append(f"{expression} AS {quote(info.name)}")
        columns.append(info.name)
        taken.add(info.name.lower())
    aliases: dict[str, str] = {}
    for name in list(columns):
        alias = camel_case(name)
        if alias is None or alias.lower() in taken:
            continue
        select.append(f"{quote(name)} AS {quote(alias)}")
        columns.append(alias)
        aliases[alias] = name
        taken.add(alias.lower())
    select.append(quote(CONTAINER))
    columns.append(CONTAINER)
    body = ",\n  ".join(select)
    # Both views spell the query out: a view over the other view would bind twice for every query.
    statements = [f"CREATE OR REPLACE VIEW {name} AS SELECT\n  {body}\nFROM {EVENTS_TABLE}" for name in VIEWS]
    return statements, SchemaInfo(tables=VIEWS, columns=tuple(columns), aliases=aliases)


#: Upgrades of older files: ``MIGRATIONS[n]`` takes a connection inside a transaction from schema
#: version ``n`` to ``n + 1``. Views are rebuilt on every open, so they need no entry here.
def _record_key_owners(conn: Any) -> None:
    """1 -> 2: the catalog remembers which project first sent each key (unknown for older keys)."""
    conn.execute(f"ALTER TABLE {CATALOG_TABLE} ADD COLUMN project_id INTEGER")


MIGRATIONS: Final[dict[int, Callable[[Any], None]]] = {1: _record_key_owners}


# -- spans -----------------------------------------------------------------------------------------

SPANS_TABLE: Final = "span_rows"
SPANS_VIEW: Final = "spans"

#: The spans' columns, in the order the view shows them (``kind`` as ``CoreColumn.kind``).
SPAN_COLUMNS: Final = (
    CoreColumn("timestamp", "TIMESTAMP", "timestamp"),
    CoreColumn("duration_ms", "DOUBLE", "float"),
    CoreColumn("trace_id", "VARCHAR", "text"),
    CoreColumn("span_id", "VARCHAR", "text"),
    CoreColumn("parent_span_id", "VARCHAR", "text"),
    CoreColumn("name", "VARCHAR", "text"),
    CoreColumn("kind", "VARCHAR", "text"),
    CoreColumn("status", "VARCHAR", "text"),
    CoreColumn("status_message", "VARCHAR", "text"),
    CoreColumn("service", "VARCHAR", "text"),
    CoreColumn("environment", "VARCHAR", "text"),
    CoreColumn("release", "VARCHAR", "text"),
    CoreColumn("host", "VARCHAR", "text"),
    CoreColumn("project_id", "INTEGER", "int"),
    CoreColumn("received_at", "TIMESTAMP", "timestamp"),
    CoreColumn("attributes", "JSON", "json"),
    CoreColumn("events", "JSON", "json"),
    CoreColumn("links", "JSON", "json"),
)
SPAN_NAMES: Final = tuple(column.name for column in SPAN_COLUMNS)
#: Columns the view computes: the span's end.
SPAN_DERIVED: Final = ("end_timestamp",)


def span_statements() -> list[str]:
    """DDL for the spans table and view (idempotent; run on every read-write open)."""
    required = ("timestamp", "trace_id", "span_id", "project_id")
    body = ",\n  ".join(
        f"{quote(c.name)} {c.sql_type}{' NOT NULL' if c.name in required else ''}" for c in SPAN_COLUMNS
    )
    names = ", ".join(quote(name) for name in SPAN_NAMES)
    end = (
        f"{quote('timestamp')} + to_microseconds(CAST(round(coalesce({quote('duration_ms')}, 0) * 1000)"
        f" AS BIGINT)) AS {quote('end_timestamp')}"
    )
    return [
        f"CREATE TABLE IF NOT EXISTS {SPANS_TABLE} (\n  {body}\n)",
        f"CREATE OR REPLACE VIEW {SPANS_VIEW} AS SELECT {names}, {end} FROM {SPANS_TABLE}",
    ]


def with_spans(schema: SchemaInfo) -> SchemaInfo:
    """``schema`` with the ``spans`` view and its columns added (camelCase names find them too)."""
    known = {name.lower() for name in schema.columns}
    extra = tuple(name for name in (*SPAN_NAMES, *SPAN_DERIVED) if name not in known)
    return SchemaInfo(
        tables=(*schema.tables, SPANS_VIEW),
        columns=(*schema.columns, *extra),
        aliases=schema.aliases,
        plain_tables=(*schema.plain_tables, SPANS_VIEW),
    )
