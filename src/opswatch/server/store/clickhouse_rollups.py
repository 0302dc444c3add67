"""Per-minute rollups on ClickHouse: the twin of ``rollups.py``, on ClickHouse's own machinery.

    rollup_minutes      AggregatingMergeTree, PARTITION BY toDate(minute),
                        ORDER BY (minute, project_id, service, operation, level, kind, environment)
      minute            DateTime('UTC')
      project_id ... environment                        the dimensions, Nullable as in ``event_rows``
      events, durations                                 SimpleAggregateFunction(sum, UInt64)
      duration_sum, _min, _max                        SimpleAggregateFunction(sum|min|max, Nullable(Float64))
      sketch                                            SimpleAggregateFunction(sumMap, Map(Int32, UInt64))
    rollup_minutes_mv   MATERIALIZED VIEW ... TO rollup_minutes: the rollup of every block inserted
                        into ``event_rows``

Why. ClickHouse maintains this by itself: the materialized view turns each insert block (the writer
inserts only events it found new) into rollup rows within the same ``INSERT``, and the aggregating
engine merges rows of the same key when parts merge (sums add, the sketch maps add key by key), which
is what ``rollups.compact`` does by hand on DuckDB. Reads still ``GROUP BY`` (merges are eventual).
A retried insert block (same ``insert_deduplication_token``) is dropped by ``event_rows`` and, with
``deduplicate_blocks_in_dependent_materialized_views`` and a deduplication window on this table, by the
rollup too: a retry is never counted twice. Unlike ``event_rows`` this table is not a
``ReplacingMergeTree`` backstop for racing writers (a second copy of an event would count twice), which
the one writer per database rules out.

Retention: the same TTL as the events, and ``expire`` (the store's ``delete_older_than``) drops the
minutes before the cutoff and rebuilds the cutoff's own minute from the events left. Reads take whole
minutes from the rollup and the partial edge minutes from ``event_rows`` (``rollups.py``).
"""

from __future__ import annotations

import datetime
from typing import Any, Final

import sqlglot

from . import sketch
from .clickhouse_client import Client, string_literal
from .layout import EVENTS_TABLE, quote
from .rollups import DIMENSIONS, ERROR_LEVELS, STATS, TABLE, RollupAnswer, RollupGroup, RollupRequest, window

VIEW: Final = "rollup_minutes_mv"
DEDUP_WINDOW: Final = 1000

_DIMS: Final = ", ".join(quote(d) for d in DIMENSIONS)
_DIMENSION_TYPES: Final = {"project_id": "Nullable(Int32)"}
_KEY: Final = f"toInt32(ifNull({sketch.key_sql(quote('duration_ms'))}, 0))"


def _time(value: datetime.datetime) -> str:
    return f"toDateTime64({string_literal(value.isoformat(sep=' ', timespec='milliseconds'))}, 3, 'UTC')"


def create_statement() -> str:
    dims = ", ".join(f"{quote(d)} {_DIMENSION_TYPES.get(d, 'Nullable(String)')}" for d in DIMENSIONS)
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (minute DateTime('UTC'), {dims}, "
        "events SimpleAggregateFunction(sum, UInt64), durations SimpleAggregateFunction(sum, UInt64), "
        "duration_sum SimpleAggregateFunction(sum, Nullable(Float64)), "
        "duration_min SimpleAggregateFunction(min, Nullable(Float64)), "
        "duration_max SimpleAggregateFunction(max, Nullable(Float64)), "
        "sketch SimpleAggregateFunction(sumMap, Map(Int32, UInt64))) "
        f"ENGINE = AggregatingMergeTree PARTITION BY toDate(minute) ORDER BY (minute, {_DIMS}) "
        f"SETTINGS allow_nullable_key = 1, non_replicated_deduplication_window = {DEDUP_WINDOW}"
    )


def rollup_select(condition: str | None = None) -> str:
    """The rollup of ``event_rows`` (matching ``condition``), as the view and the backfills compute it."""
    duration = quote("duration_ms")
    where = f" WHERE {condition}" if condition else ""
    return (
        f"SELECT toStartOfMinute({quote('timestamp')}) AS minute, {_DIMS}, count() AS events, "
        f"count({duration}) AS durations, sum({duration}) AS duration_sum, min({duration}) AS duration_min, "
        f"max({duration}) AS duration_max, sumMapIf(map({_KEY}, toUInt64(1)), {duration} IS NOT NULL) "
        f"AS sketch FROM {EVENTS_TABLE}{where} GROUP BY minute, {_DIMS}"
    )


def open_rollups(client: Client, enabled: bool, settings: dict[str, Any]) -> None:
    """Create the table and view (filling the table from the stored events) or drop both."""
    if not enabled:
        client.command(f"DROP VIEW IF EXISTS {VIEW}")
        client.command(f"DROP TABLE IF EXISTS {TABLE}")
        return
    _, found = client.query(
        f"SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = '{VIEW}'"
    )
    if found and int(found[0][0]):
        return
    # No view: a new database, or a start that died half way. Fill from scratch, then start the view
    # (nothing else writes while the store opens).
    client.command(create_statement())
    client.command(f"TRUNCATE TABLE {TABLE}")
    client.command(f"INSERT INTO {TABLE} {rollup_select()}", settings)
    client.command(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {VIEW} TO {TABLE} AS {rollup_select()}")


def ttl_statement(days: int) -> str:
    """The rollup's native retention, the same as the events'."""
    return f"ALTER TABLE {TABLE} MODIFY TTL minute + INTERVAL {int(days)} DAY"


def expire(client: Client, cutoff: str, settings: dict[str, Any]) -> None:
    """Drop rollup minutes before ``cutoff`` (RFC 3339) and rebuild its own minute from the events left
    (called after the events before it were deleted)."""
    at = datetime.datetime.fromisoformat(cutoff.replace("Z", "+00:00")).replace(tzinfo=None)
    first = at.replace(second=0, microsecond=0)
    following = first + datetime.timedelta(minutes=1) if first < at else first
    _, days = client.query(
        f"SELECT DISTINCT toString(toDate(minute)) FROM {TABLE} "
        f"WHERE toDate(minute) < toDate({string_literal(following.date().isoformat())})"
    )
    for (day,) in days:
        client.command(f"ALTER TABLE {TABLE} DROP PARTITION {string_literal(day)}")
    client.command(f"ALTER TABLE {TABLE} DELETE WHERE minute < {_time(following)}", settings)
    if first < at:
        stamp = quote("timestamp")
        condition = f"{stamp} >= {_time(first)} AND {stamp} < {_time(following)}"
        client.command(f"INSERT INTO {TABLE} {rollup_select(condition)}", settings)


def read_sql(request: RollupRequest, max_groups: int) -> str:
    """One statement answering ``request``: per group the totals and (if asked) the merged sketch."""
    span = window(request.start, request.end)
    duration = quote("duration_ms")
    stamp = quote("timestamp")
    with_sketch = request.sketch
    columns = STATS + (", sketch" if with_sketch else "")
    parts: list[str] = []
    if span.has_minutes:
        parts.append(
            f"SELECT {_DIMS}, {columns} FROM {TABLE} WHERE minute >= {_time(span.first_minute)} "
            f"AND minute < {_time(span.end_minute)}"
        )
    raw_sketch = (
        f", mapFilter((k, v) -> v > 0, map({_KEY}, toUInt64({duration} IS NOT NULL))) AS sketch"
        if with_sketch
        else ""
    )
    for low, high in span.raw_parts:
        parts.append(
            f"SELECT {_DIMS}, toUInt64(1) AS events, toUInt64({duration} IS NOT NULL) AS durations, "
            f"{duration} AS duration_sum, {duration} AS duration_min, {duration} AS duration_max{raw_sketch} "
            f"FROM {EVENTS_TABLE} WHERE {stamp} >= {_time(low)} AND {stamp} < {_time(high)}"
        )
    if not parts:
        parts.append(f"SELECT {_DIMS}, {columns} FROM {TABLE} WHERE 0")
    condition = "1"
    if request.where:
        condition = sqlglot.transpile(request.where, read="duckdb", write="clickhouse")[0]
    groups = [quote(name) for name in request.group_by]
    head = "".join(f"{group}, " for group in groups)
    errors = ", ".join(string_literal(level) for level in ERROR_LEVELS)
    sql = (
        f"SELECT {head}sum(events), sum(if({quote('level')} IN ({errors}), events, 0)), sum(durations), "
        f"sum(duration_sum), min(duration_min), max(duration_max)"
        f"{', sumMap(sketch)' if with_sketch else ''} FROM ({' UNION ALL '.join(parts)}) WHERE {condition}"
    )
    if groups:
        sql += f" GROUP BY {', '.join(groups)}"
    return sql + f" LIMIT {int(max_groups) + 1}"


def answer(rows: list[tuple[Any, ...]], request: RollupRequest, max_groups: int) -> RollupAnswer:
    """Rows of ``read_sql`` as groups."""
    width = len(request.group_by)
    found: list[RollupGroup] = []
    for row in rows[:max_groups]:
        events, errors, durations, total, low, high = row[width : width + 6]
        buckets = None
        if request.sketch:
            buckets = {int(bucket): int(count) for bucket, count in (row[width + 6] or {}).items() if count}
        found.append(
            RollupGroup(
                group=tuple(row[:width]),
                events=int(events or 0),
                errors=int(errors or 0),
                durations=int(durations or 0),
                duration_sum=None if total is None else float(total),
                duration_min=None if low is None else float(low),
                duration_max=None if high is None else float(high),
                buckets=buckets,
            )
        )
    return RollupAnswer(found, truncated=len(rows) > max_groups)
