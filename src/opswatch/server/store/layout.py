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
    event_keys      the idempotency index: key_hash UBIGINT PRIMARY KEY (of project_id, event_id),
                    day DATE (arrival; retention drops old keys with the events)
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
prune time filters. Event ids are kept as text (32 hex characters compress to about the size of a UUID,
and match what the SDK prints).

Idempotency: why ``event_keys``. A record is the same record when its ``(project_id, event_id)`` is:
not its event id alone (ids are predictable, and one project must not be able to swallow another's
events) and not its timestamp (a record sent without one is dated on arrival, so a resend after a
restart carries a different one; Sentry check-ins never carry one). The first design looked ids up
among stored rows near the batch's timestamps (cheap thanks to the zone maps, but wrong for exactly
those records); a look-up by id alone has nothing to prune with and scans the whole ``event_id``
column (45 ms per 10 k-id batch at 1 M events, growing linearly). So the store keeps an index of its
own: one ``UBIGINT`` per record, a 64-bit BLAKE2b hash of ``(project_id, event_id)``, as the primary
key of a narrow table. Each group commit runs one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` into
it: the hashes it returns were new, the rest were there already. Measured here (2 cores, busy; one
10 k-key batch per transaction, keys random): the 64-bit key costs 4.3 µs per record at 2 M keys,
218 MB peak RSS and 24 MB on disk; the same index on ``(project_id INTEGER, event_id VARCHAR)`` cost
9.9 µs at 2 M, 17 µs at 5 M, 406 / 844 MB RSS and 4x the disk; a 128-bit ``md5_number`` key 62 µs.
The hash is computed in Python (stable across DuckDB versions, whose ``hash()`` is not promised to be).
A 64-bit hash can collide: over 30 days of 10 M events a day, a 1 in 400 chance that any two keys share
a hash (at 1 M a day, 1 in 40,000). So a key found in the index is not trusted blindly: the few
"already there" keys of a commit (retries are rare) are checked against ``event_rows`` itself before a
record is skipped. A collision costs one scan of the ``event_id`` column, never an event. Keys are
dropped by arrival day with the events' retention (``delete_older_than``), which bounds the index: a
resend of an event older than the retention is stored again, as it would be had it never arrived.

Spans (distributed tracing) live in a table of their own, ``span_rows``, read through the view
``spans``: a span is not a log record. It has a start and a duration instead of one instant, a parent,
a kind, a status, and three nested parts (``attributes``, ``events``, ``links``); its identity is
(project_id, trace_id, span_id), not an event id. One table per signal is the shape of every trace
store (SigNoz, Tempo's Parquet blocks, Sentry's spans dataset). The common fields are typed columns,
``timestamp`` is the span's start (so the time filters written for ``logs`` read the same way and the
zone maps prune them), and ``trace_id`` has the same text form as in ``logs`` (32 lower-case hex), so
``logs JOIN spans USING (trace_id)`` needs no conversion. Attributes, events and links are JSON, and
span attribute keys have a key catalog of their own (``span_attribute_keys``, the same ``KeyCatalog``
rules and limits as the events'): every cataloged key is a column of the ``spans`` view under its own
name (``"http.route"``), read from ``attributes`` while cold, and a key seen in ``STORE_PROMOTE_AFTER``
spans gets a typed column ``a_<key>`` of ``span_rows``, filled for the spans already stored. Unlike the
events' container, ``attributes`` keeps every attribute, promoted ones too (the promoted column is a
materialized copy, as ClickHouse's MATERIALIZED columns are): a span's attributes are shown and
exported as one object, and ``attributes->>'$."http.route"'`` keeps working. Spans are written by
the same writer thread, idempotent by their identity with the same look-up as events (stored ids in the
batch's time range, no index). The table is created when a read-write store opens and it is missing
(``CREATE ... IF NOT EXISTS``), so it needs no schema version of its own and an older file gains it.

Names in SQL: DuckDB identifiers are case-insensitive, so keys are cataloged case-insensitively.
A snake_case name (``church_id``) also answers as camelCase (``churchId``) through an alias column,
unless a key with that spelling exists itself: the seed's queries name ``churchId``, ``campaignName``,
``successCount`` while Python code logs ``church_id``.

The schema version is recorded in ``store_meta``; ``MIGRATIONS`` upgrades an older file on open, and a
file from a newer opswatch is refused.

Per-minute rollups for alert rules (``rollup_minutes``): their layout and why, in ``rollups.py``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from hashlib import blake2b
from typing import Any, Final

from .base import SchemaInfo
from .catalog import BIGINT, BOOLEAN, DOUBLE, JSON, VARCHAR, KeyInfo

SCHEMA_VERSION: Final = 3

EVENTS_TABLE: Final = "event_rows"
KEYS_TABLE: Final = "event_keys"
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

#: Names an attribute key can never take (compared in lower case): the common fields, and the container
#: (a field named ``attributes`` is read as ``attributes->'attributes'``). ``seq`` is not among them: the
#: views never show the internal ``seq`` column, so a field named ``seq`` is a column of the view under
#: its own name (a promoted one is stored as ``a_seq``).
RESERVED: Final = frozenset({*CORE_NAMES, CONTAINER})


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


def key_hash(project_id: int | None, event_id: str) -> int:
    """The 64-bit key of ``(project_id, event_id)`` in ``event_keys`` (BLAKE2b: stable across versions
    of Python and DuckDB, unlike their own hash functions)."""
    text = f"{'' if project_id is None else project_id}\x00{event_id}"
    return int.from_bytes(blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


KEYS_DDL: Final = f"CREATE TABLE {KEYS_TABLE} (key_hash UBIGINT PRIMARY KEY, day DATE NOT NULL)"


def create_statements() -> list[str]:
    """DDL for a new, empty store (run inside the opening transaction)."""
    core = ",\n  ".join(
        f"{quote(c.name)} {c.sql_type}{' NOT NULL' if c.name in ('timestamp', 'event_id') else ''}"
        for c in CORE_COLUMNS
    )
    return [
        f"CREATE TABLE {EVENTS_TABLE} (\n  {quote(SEQ)} BIGINT NOT NULL,\n  {core},\n"
        f"  {quote(CONTAINER)} JSON\n)",
        KEYS_DDL,
        catalog_ddl(CATALOG_TABLE),
    ]


def catalog_ddl(table: str, *, if_not_exists: bool = False) -> str:
    """DDL for a key catalog table (``attribute_keys`` for events, ``span_attribute_keys`` for spans)."""
    return (
        f"CREATE TABLE {'IF NOT EXISTS ' if if_not_exists else ''}{table} (key VARCHAR PRIMARY KEY, "
        "name VARCHAR NOT NULL, type VARCHAR NOT NULL, column_name VARCHAR, seen BIGINT NOT NULL, "
        "cold_first VARCHAR, cold_last VARCHAR, project_id INTEGER)"
    )


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
    for info in key_columns(keys, RESERVED, taken):
        expression = quote(info.column) if info.column else cold_expression(info)
        select.append(f"{expression} AS {quote(info.name)}")
        columns.append(info.name)
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


def key_columns(keys: Iterable[KeyInfo], reserved: frozenset[str], taken: set[str]) -> list[KeyInfo]:
    """The cataloged keys that are columns of a view, in column order; adds their names to ``taken``
    (lower case). A key whose name a column already has stays in the container only."""
    out: list[KeyInfo] = []
    for info in sorted((i for i in keys if i.key not in reserved), key=lambda i: (i.key, i.name)):
        if info.name.lower() not in taken:
            out.append(info)
            taken.add(info.name.lower())
    return out


#: Upgrades of older files: ``MIGRATIONS[n]`` takes a connection inside a transaction from schema
#: version ``n`` to ``n + 1``. Views are rebuilt on every open, so they need no entry here.
def _record_key_owners(conn: Any) -> None:
    """1 -> 2: the catalog remembers which project first sent each key (unknown for older keys)."""
    conn.execute(f"ALTER TABLE {CATALOG_TABLE} ADD COLUMN project_id INTEGER")


def _add_event_keys(conn: Any) -> None:
    """2 -> 3: the idempotency index, filled from the events already stored."""
    conn.execute(KEYS_DDL)
    found = conn.execute(
        f"SELECT DISTINCT project_id, event_id, CAST(coalesce(received_at, {quote('timestamp')}) AS DATE) "
        f"FROM {EVENTS_TABLE}"
    ).fetchall()
    hashes = [key_hash(project_id, event_id) for project_id, event_id, _day in found]
    days = [day for _project, _event, day in found]
    conn.execute(
        f"INSERT INTO {KEYS_TABLE} SELECT unnest($1::UBIGINT[]), unnest($2::DATE[]) ON CONFLICT DO NOTHING",
        [hashes, days],
    )


MIGRATIONS: Final[dict[int, Callable[[Any], None]]] = {1: _record_key_owners, 2: _add_event_keys}


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
#: The span attribute key catalog (same shape as ``attribute_keys``).
SPAN_CATALOG_TABLE: Final = "span_attribute_keys"
#: Span attribute keys that never get a view column of their own: the spans' columns' names.
SPAN_RESERVED: Final = frozenset({*SPAN_NAMES, *SPAN_DERIVED})
#: The span columns shown before the key columns; ``attributes``, ``events`` and ``links`` come last.
_SPAN_HEAD: Final = tuple(name for name in SPAN_NAMES if name not in ("attributes", "events", "links"))


def span_statements(keys: Iterable[KeyInfo] = ()) -> list[str]:
    """DDL for the spans table, its key catalog and its view (idempotent; run on every read-write open)."""
    return [*span_table_statements(), *span_view_statements(keys)[0]]


def span_table_statements() -> list[str]:
    """DDL for the spans table and its key catalog (``IF NOT EXISTS``: an older file gains them)."""
    required = ("timestamp", "trace_id", "span_id", "project_id")
    body = ",\n  ".join(
        f"{quote(c.name)} {c.sql_type}{' NOT NULL' if c.name in required else ''}" for c in SPAN_COLUMNS
    )
    return [
        f"CREATE TABLE IF NOT EXISTS {SPANS_TABLE} (\n  {body}\n)",
        catalog_ddl(SPAN_CATALOG_TABLE, if_not_exists=True),
    ]


def span_view_statements(keys: Iterable[KeyInfo]) -> tuple[list[str], SchemaInfo]:
    """``CREATE OR REPLACE VIEW spans``: the span columns, ``end_timestamp``, one column per cataloged
    span attribute key (its typed column once promoted, else read from ``attributes``), and then
    ``attributes`` (every attribute, promoted ones too), ``events`` and ``links``."""
    end = (
        f"{quote('timestamp')} + to_microseconds(CAST(round(coalesce({quote('duration_ms')}, 0) * 1000)"
        f" AS BIGINT)) AS {quote('end_timestamp')}"
    )
    select = [*(quote(name) for name in _SPAN_HEAD), end]
    columns = span_view_columns(keys)
    infos = {info.name: info for info in keys}
    for name in columns[len(select) : -3]:
        info = infos[name]
        select.append(f"{quote(info.column) if info.column else cold_expression(info)} AS {quote(name)}")
    select += [quote("attributes"), quote("events"), quote("links")]
    body = ",\n  ".join(select)
    statement = f"CREATE OR REPLACE VIEW {SPANS_VIEW} AS SELECT\n  {body}\nFROM {SPANS_TABLE}"
    return [statement], SchemaInfo(
        tables=(SPANS_VIEW,), columns=columns, aliases={}, plain_tables=(SPANS_VIEW,)
    )


def span_view_columns(keys: Iterable[KeyInfo]) -> tuple[str, ...]:
    """The names of the ``spans`` view's columns, in order (both engines show exactly these)."""
    taken = {name.lower() for name in SPAN_RESERVED}
    named = [info.name for info in key_columns(keys, SPAN_RESERVED, taken)]
    return (*_SPAN_HEAD, *SPAN_DERIVED, *named, "attributes", "events", "links")


#: The last ``with_spans`` answers, by the identity of their inputs: the same schema and span columns
#: give the same object, so callers that cache work per schema (the rules' checked statements) can
#: compare by identity. A few entries: one per store open in the process.
_WITH_SPANS: dict[tuple[int, int], tuple[SchemaInfo, object, SchemaInfo]] = {}


def with_spans(schema: SchemaInfo, span_columns: Iterable[str] = SPAN_NAMES + SPAN_DERIVED) -> SchemaInfo:
    """``schema`` with the ``spans`` view and its columns added (camelCase names find them too); the
    same object again for the same (identical) inputs."""
    key = (id(schema), id(span_columns))
    found = _WITH_SPANS.get(key)
    if found is not None and found[0] is schema and found[1] is span_columns:
        return found[2]
    made = _with_spans(schema, span_columns)
    if len(_WITH_SPANS) >= 16:
        _WITH_SPANS.clear()
    _WITH_SPANS[key] = (schema, span_columns, made)
    return made


def _with_spans(schema: SchemaInfo, span_columns: Iterable[str]) -> SchemaInfo:
    known = {name.lower() for name in schema.columns}
    extra = tuple(name for name in span_columns if name.lower() not in known)
    return SchemaInfo(
        tables=(*schema.tables, SPANS_VIEW),
        columns=(*schema.columns, *extra),
        aliases=schema.aliases,
        plain_tables=(*schema.plain_tables, SPANS_VIEW),
    )
