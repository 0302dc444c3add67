"""How events are laid out in ClickHouse, and why (the scale-out twin of ``layout.py``).

The database holds::

    event_rows      ReplacingMergeTree, PARTITION BY toDate(timestamp), ORDER BY (project_id, event_id)
      seq           UInt64               arrival order, assigned by the writer (cursor for ``tail``)
      timestamp, received_at             DateTime64(3, 'UTC')
      level, logger, message, ...        Nullable(String); event_id String
      pid, project_id                    Nullable(Int32); duration_ms Nullable(Float64)
      error, attributes                  Nullable(String) holding JSON text
      a_<key> ...   Nullable(Bool | Int64 | Float64 | String)   promoted attribute keys
    attribute_keys  the key catalog (the same ``KeyCatalog`` as DuckDB's, with each key's owning project
                    and per-project shares), ReplacingMergeTree by key
    store_meta      schema_version and last_seq, ReplacingMergeTree by key
    logs, events    views: common fields, one column per cataloged key, camelCase aliases, attributes
    span_rows, spans  the spans' table and view (``clickhouse_spans.py``)

Same idea as the DuckDB file: common fields typed, recurring attribute keys promoted to typed columns
by the catalog (``catalog.py``), the long tail in one container read through the view. The container
is JSON *text* rather than a ``Map`` or the ``JSON`` type: the documented SQL dialect's JSON operators
(``attributes->>'key'``, ``->>'$.a[0]'``) transpile to ``JSONExtract*`` functions, which read JSON text;
a record's nested values, types and key spellings come back exactly as stored; and cold keys are read
with typed extractions (``JSONExtract(attributes, 'amount', 'Nullable(Float64)')``).

Idempotency by (project_id, event_id), and why it is correct under retries:

1. ``ORDER BY (project_id, event_id)`` makes the sorting key the idempotency key, so the writer's
   look-up of a batch's ids among stored events (``project_id = p AND event_id IN (...)``) can skip
   granules by the primary index instead of parsing rows. The writer inserts only ids not found, and
   numbers them. (Measured through chdb on 220 k events in 56 small parts, where the index cannot
   skip yet: a retried batch of 10 k events found all of them stored in ~0.45 s.)
   One writer (this server) appends at a time, so a retried batch, a batch repeating an id and a
   batch partly stored before all store each event once, across restarts.
2. ``insert_deduplication_token`` (enabled by ``non_replicated_deduplication_window``) covers the one
   case the look-up cannot see: an insert that reached the server whose answer was lost. The writer
   retries that block with the same token and the server drops the second copy.
3. ``ReplacingMergeTree`` is the backstop for writers that race (several server processes, a later
   step): rows with the same key collapse when parts merge. Until then such a race could show a row
   twice; with one writer no such rows are ever written, so reads need no ``FINAL``.

Retention: partitions are days, and the table has a native ``TTL`` of ``retention_days``
(``ttl_only_drop_parts``: whole expired day parts are dropped, no rewrite). ``delete_older_than``
deletes the same rows at once (a lightweight ``DELETE``), for the retention job's clock and its count.

Durability: the table has ``fsync_after_insert`` and ``fsync_part_directory``, so an insert answers
after its part is on disk.

The schema version is in ``store_meta``; ``MIGRATIONS`` upgrades older databases on start, a newer
one is refused. Views are rebuilt on every start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from .base import SchemaInfo
from .catalog import BIGINT, BOOLEAN, DOUBLE, JSON, VARCHAR, KeyInfo
from .clickhouse_client import string_literal
from .layout import CATALOG_TABLE, CONTAINER, CORE_COLUMNS, EVENTS_TABLE, META_TABLE, SEQ, VIEWS, quote
from .layout import view_statements as duckdb_view_statements

SCHEMA_VERSION: Final = 2

#: Inserted but not yet merged blocks remembered for ``insert_deduplication_token``.
DEDUP_WINDOW: Final = 1000

_CORE_TYPES: Final = {
    "timestamp": "DateTime64(3, 'UTC')",
    "text": "Nullable(String)",
    "int": "Nullable(Int32)",
    "float": "Nullable(Float64)",
    "json": "Nullable(String)",
}

#: ClickHouse column types of promoted keys, by catalog type.
PROMOTED_TYPES: Final = {
    BOOLEAN: "Nullable(Bool)",
    BIGINT: "Nullable(Int64)",
    DOUBLE: "Nullable(Float64)",
    VARCHAR: "Nullable(String)",
    JSON: "Nullable(String)",
}


def core_type(name: str, kind: str) -> str:
    """The ClickHouse type of a common field's column."""
    if name == "event_id":
        return "String"
    return _CORE_TYPES[kind]


def create_statements() -> list[str]:
    """DDL for a new, empty database (``IF NOT EXISTS``: a start that died half way repeats safely)."""
    columns = ",\n  ".join(
        [f"{quote(SEQ)} UInt64"]
        + [f"{quote(c.name)} {core_type(c.name, c.kind)}" for c in CORE_COLUMNS]
        + [f"{quote(CONTAINER)} Nullable(String)"]
    )
    return [
        f"CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (\n  {columns}\n)\n"
        "ENGINE = ReplacingMergeTree\nPARTITION BY toDate(timestamp)\nORDER BY (project_id, event_id)\n"
        "SETTINGS allow_nullable_key = 1, fsync_after_insert = 1, fsync_part_directory = 1, "
        f"non_replicated_deduplication_window = {DEDUP_WINDOW}, ttl_only_drop_parts = 1",
        catalog_ddl(CATALOG_TABLE),
        f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key String, value String, version UInt64) "
        "ENGINE = ReplacingMergeTree(version) ORDER BY key",
    ]


def catalog_ddl(table: str) -> str:
    """DDL for a key catalog table (``attribute_keys``, ``span_attribute_keys``), ``IF NOT EXISTS``."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (key String, name String, type String, "
        "column_name Nullable(String), seen Int64, cold_first Nullable(String), cold_last Nullable(String), "
        "version UInt64, project_id Nullable(Int32)) ENGINE = ReplacingMergeTree(version) ORDER BY key"
    )


def ttl_statement(days: int) -> str:
    """The table's native retention: rows older than ``days`` days by event time expire."""
    return f"ALTER TABLE {EVENTS_TABLE} MODIFY TTL toDateTime(timestamp) + INTERVAL {int(days)} DAY"


def cold_expression(info: KeyInfo) -> str:
    """ClickHouse SQL reading a cold key from the JSON container as its catalog type."""
    container = quote(CONTAINER)
    key = string_literal(info.name)
    if info.type == JSON:
        return f"nullIf(JSONExtractRaw({container}, {key}), '')"
    if info.type == VARCHAR:  # a text key, or a key whose values had several types: as text
        return (
            f"multiIf(NOT JSONHas({container}, {key}), NULL, JSONType({container}, {key}) = 'String', "
            f"JSONExtractString({container}, {key}), JSONExtractRaw({container}, {key}))"
        )
    return f"JSONExtract({container}, {key}, {string_literal(PROMOTED_TYPES[info.type])})"


def view_statements(keys: Iterable[KeyInfo]) -> tuple[list[str], SchemaInfo]:
    """``CREATE OR REPLACE VIEW`` for ``logs`` and ``events`` and what they expose.

    The columns, their names and the camelCase aliases are exactly DuckDB's (``layout.view_statements``
    decides them); only the expressions are ClickHouse's.
    """
    keys = list(keys)
    schema = duckdb_view_statements(keys)[1]
    by_name = {info.name: info for info in keys}
    core = {column.name for column in CORE_COLUMNS}
    select: list[str] = []
    for name in schema.columns:
        if name in core or name == CONTAINER:
            select.append(quote(name))
        elif name in schema.aliases:
            select.append(f"{quote(schema.aliases[name])} AS {quote(name)}")
        else:
            info = by_name[name]
            expression = quote(info.column) if info.column else cold_expression(info)
            select.append(f"{expression} AS {quote(name)}")
    body = ",\n  ".join(select)
    statements = [f"CREATE OR REPLACE VIEW {view} AS SELECT\n  {body}\nFROM {EVENTS_TABLE}" for view in VIEWS]
    return statements, schema


def _add_key_owners(client: Any) -> None:
    """Version 2: the catalog records the project that first sent each key (older keys: NULL)."""
    client.command(f"ALTER TABLE {CATALOG_TABLE} ADD COLUMN IF NOT EXISTS project_id Nullable(Int32)")


#: Upgrades of older databases: ``MIGRATIONS[n]`` takes a client from schema version ``n`` to ``n + 1``.
MIGRATIONS: Final[dict[int, Callable[[Any], None]]] = {1: _add_key_owners}
