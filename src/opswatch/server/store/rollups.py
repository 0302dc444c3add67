"""Per-minute rollups of events, kept at ingest so common rule signals need not rescan raw events.

Layout (DuckDB; ClickHouse's twin is ``clickhouse_rollups.py``)::

    rollup_minutes   one row per (minute, dimensions) *per writing commit*, merged later
      minute         TIMESTAMP   the event time truncated to the minute (UTC)
      project_id     INTEGER     \
      service, operation, level, kind, environment   VARCHAR   the dimensions (NULL as stored)
      events         BIGINT      events of that minute and dimensions
      durations      BIGINT      of those, events with a ``duration_ms``
      duration_sum, duration_min, duration_max   DOUBLE   over those durations (NULL when none)
      sketch         STRUCT(k INTEGER, n BIGINT)[]   the durations' quantile sketch (``sketch.py``):
                                 (bucket key, count) pairs; a key may repeat until ``compact``
      part           BIGINT      which write made the row (a commit or a compaction), for compaction

Why this shape.

* **The dimensions** are the fields rules filter and split by (issue 12: project, service, operation,
  level, kind; environment because the default error-rate rule filters on it). They are the view's own
  columns with the same types and NULLs, so a rule's ``where`` over them means the same on the rollup
  as on ``logs`` (the same engine evaluates the same predicate on the same values). Errors need no
  column of their own: ``level`` is a dimension. Other fields (attributes) are not rolled up: they are
  unbounded in number and cardinality; their rules read raw events.
* **Written in the same transaction as the events** (``add``, in the writer's group commit), from the
  rows that commit inserted (by their ``seq`` range, which the zone maps find at once): an acknowledged
  event is in its rollup exactly once, a retried or repeated (project_id, event_id) is skipped with
  its event and never counted, and a failed commit leaves neither.
* **Appended per commit, merged later.** DuckDB cannot add to a row in place cheaply (an upsert needs
  a unique index on nullable columns, and a list column is rewritten on update), so each commit appends
  one row per (minute, dimensions) it touched, and every read sums them (``GROUP BY``): correct however
  many rows a minute has. ``compact`` merges the rows of recently touched minutes into one per key (on
  the writer thread, every ``STORE_ROLLUP_COMPACT_ROWS`` rows written and when idle). This is the
  model of ClickHouse's ``AggregatingMergeTree``, done by hand.
* **The sketch is a list of (bucket, count)**, merged by adding counts (``unnest`` and ``GROUP BY``):
  a per-minute sketch holds a few dozen buckets, a window's is their sum. At ingest each event adds
  ``(its bucket, 1)`` (one ``GROUP BY`` per commit; adding equal buckets there too cost twice as much),
  and ``compact`` adds up equal buckets.
* **Retention** (``expire``) deletes rollup minutes before the cutoff and rebuilds the cutoff's own
  minute from the events that remain, so the rollup always summarises exactly the stored events.
* A store opened with ``rollups=False`` drops the table (a rollup that stopped being maintained must
  never be read); opening with rollups again recreates it from the stored events.

What it costs at ingest (``benchmarks/bench_rules.py``; issue 12 asks for under 5 %). At ~115 events a
minute spread over six dimensions a minute's keys barely repeat (0.49 rollup rows per event; 0.84 at
~23 a minute), so the rollup is nearly a second, narrower copy of the events. Measured per 500 k events
(isolated statements, 7 to 9 s of ingest CPU): the ``add`` statement ~0.6-0.9 s, of which the grouping
itself ~0.25 s, the sketch's ``list`` aggregate ~0.25 s (it runs per event, not per row) and writing
the rows (insert and WAL) the rest; ``compact`` ~1 % of ingest. What was tried and not kept: a 64-bit
hash of the dimensions in place of the six columns, with a table of dimension tuples (writes 30 % less,
but finding each commit's new tuples costs it back: all of it in SQL, half with the known hashes kept in
memory, for 14 % and a chance of two tuples sharing a hash); the sketch as a plain ``INTEGER[]`` of
keys or built by ``list_transform`` (5-10 % of the statement); no sketch list for rows whose one or two
durations are their min and max (the list aggregate still runs; a second pass for the others costs
more); 5- and 10-minute buckets (25 % and 31 % less: the per-event work stays, and the raw edges of every
read grow to minutes). Grouping by (minute, one hash) with no sketch at all is ~5 % by itself: at this
density an ingest-time rollup with a duration sketch does not get under 5 % on DuckDB.

Reading (``read``): a window ``[start, end)`` is read from the rollup for its whole minutes and from
raw events for the partial minutes at its two edges (at most two minutes of events, which the zone
maps on ``timestamp`` find), in one statement: the answer is the same as over raw events (exactly for
counts, sums, minimum and maximum; percentiles within the sketch's relative error).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any, Final

from . import sketch
from .layout import EVENTS_TABLE, META_TABLE, SEQ, literal, quote

TABLE: Final = "rollup_minutes"
#: The dimensions a rollup keeps, in the view's spelling (each a column of ``logs``).
DIMENSIONS: Final = ("project_id", "service", "operation", "level", "kind", "environment")
#: Levels counted as errors (``rules.model.ERROR_LEVELS``).
ERROR_LEVELS: Final = ("error", "fatal")
#: The rollup's totals, in the order a read selects them.
STATS: Final = "events, durations, duration_sum, duration_min, duration_max"

_SKETCH_TYPE: Final = "STRUCT(k INTEGER, n BIGINT)[]"
_MARK_KEY: Final = "rollup_compacted_part"


@dataclasses.dataclass(frozen=True)
class RollupRequest:
    """What a rule reads from the rollup: ``[start, end)``, grouped by ``group_by`` (dimensions),
    filtered by ``where`` (DuckDB-dialect SQL over dimensions only, built by the caller from a checked
    tree; the store does not check it again), with the duration sketch when ``sketch``."""

    start: float
    end: float
    group_by: tuple[str, ...] = ()
    where: str | None = None
    sketch: bool = False


@dataclasses.dataclass(frozen=True)
class RollupGroup:
    """One group's totals over the window; ``buckets`` only when the request asked for the sketch."""

    group: tuple[Any, ...]
    events: int
    errors: int = 0
    durations: int = 0
    duration_sum: float | None = None
    duration_min: float | None = None
    duration_max: float | None = None
    buckets: dict[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class RollupAnswer:
    """The groups of a request; ``truncated`` when there were more than the caller's ``max_groups``."""

    groups: list[RollupGroup]
    truncated: bool = False


@dataclasses.dataclass(frozen=True)
class Window:
    """A window split into whole minutes ``[first_minute, end_minute)`` and raw edges (ms precision)."""

    start: datetime.datetime
    end: datetime.datetime
    first_minute: datetime.datetime
    end_minute: datetime.datetime

    @property
    def raw_parts(self) -> list[tuple[datetime.datetime, datetime.datetime]]:
        """The partial minutes to read from raw events (empty ranges left out)."""
        if self.first_minute >= self.end_minute:
            return [(self.start, self.end)] if self.start < self.end else []
        edges = [(self.start, self.first_minute), (self.end_minute, self.end)]
        return [(low, high) for low, high in edges if low < high]

    @property
    def has_minutes(self) -> bool:
        return self.first_minute < self.end_minute


def moment(epoch: float) -> datetime.datetime:
    """``epoch`` as naive UTC, cut to the millisecond as the rules' window literals are."""
    found = datetime.datetime.fromtimestamp(epoch, datetime.UTC).replace(tzinfo=None)
    return found.replace(microsecond=found.microsecond // 1000 * 1000)


def window(start: float, end: float) -> Window:
    """``[start, end)`` split into whole minutes and edges."""
    low, high = moment(start), moment(end)
    first = _floor_minute(low)
    if first < low:
        first += datetime.timedelta(minutes=1)
    return Window(low, high, first, _floor_minute(high))


def _floor_minute(value: datetime.datetime) -> datetime.datetime:
    return value.replace(second=0, microsecond=0)


def text(value: datetime.datetime) -> str:
    """A naive UTC time as SQL text with milliseconds (``'2026-12-03 12:00:00.000'``)."""
    return "'" + value.isoformat(sep=" ", timespec="milliseconds") + "'"


# -- DuckDB: the table ---------------------------------------------------------------------------------

_DIMENSION_TYPES: Final = {"project_id": "INTEGER"}


def create_statement() -> str:
    """DDL of the rollup table (``IF NOT EXISTS``)."""
    dims = ", ".join(f"{quote(d)} {_DIMENSION_TYPES.get(d, 'VARCHAR')}" for d in DIMENSIONS)
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (minute TIMESTAMP NOT NULL, {dims}, events BIGINT NOT NULL, "
        "durations BIGINT NOT NULL, duration_sum DOUBLE, duration_min DOUBLE, duration_max DOUBLE, "
        f"sketch {_SKETCH_TYPE} NOT NULL, part BIGINT NOT NULL)"
    )


def open_rollups(conn: Any, enabled: bool) -> int:
    """Create (and fill from the stored events) or drop the rollup table, inside the opening
    transaction; the highest ``part`` written so far (0 when none)."""
    tables = {row[0] for row in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not enabled:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"DELETE FROM {META_TABLE} WHERE key = ?", [_MARK_KEY])
        return 0
    if TABLE not in tables:
        conn.execute(create_statement())
        conn.execute(f"DELETE FROM {META_TABLE} WHERE key = ?", [_MARK_KEY])
        conn.execute(_insert_from_events("TRUE", 1))
    row = conn.execute(f"SELECT coalesce(max(part), 0) FROM {TABLE}").fetchone()
    return int(row[0])


_DIMS_SQL: Final = ", ".join(quote(d) for d in DIMENSIONS)


def _insert_from_events(condition: str, part: int) -> str:
    """``INSERT`` of the rollup of the events matching ``condition`` (SQL over ``event_rows``).

    One ``GROUP BY``; each event's bucket goes into the sketch list as ``(key, 1)``: equal keys within a
    row are added up by reads and by ``compact``, not here (a second grouping by key doubled the cost).
    """
    duration = quote("duration_ms")
    return (
        f"INSERT INTO {TABLE} SELECT date_trunc('minute', {quote('timestamp')}) AS minute, {_DIMS_SQL}, "
        f"count(*), count({duration}), sum({duration}), min({duration}), max({duration}), "
        f"coalesce(list({{'k': {sketch.key_sql(duration)}, 'n': 1}}) FILTER (WHERE {duration} IS NOT NULL), "
        f"[]::{_SKETCH_TYPE}), {int(part)} FROM {EVENTS_TABLE} WHERE {condition} GROUP BY minute, {_DIMS_SQL}"
    )


def add(conn: Any, first_seq: int, end_seq: int, part: int) -> int:
    """Roll up the events with ``first_seq <= seq < end_seq`` (one commit's) as ``part``, in the open
    transaction; the number of rollup rows written."""
    if end_seq <= first_seq:
        return 0
    seq = quote(SEQ)
    found = conn.execute(
        _insert_from_events(f"{seq} >= {int(first_seq)} AND {seq} < {int(end_seq)}", part)
    ).fetchone()
    return int(found[0]) if found else 0


def compact(conn: Any, part: int) -> int:
    """Merge the rows of every minute written since the last compaction (and holding rows of several
    writes) into one per key, as ``part`` (higher than every part so far); its own transaction. Returns
    the rows it removed.

    Rows are appended in ``part`` order and mostly in time order, so the zone maps find both the rows
    written since the mark and the span of minutes they touch: the work follows what was written since,
    not the size of the table.
    """
    conn.execute("BEGIN TRANSACTION")
    try:
        found = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = ?", [_MARK_KEY]).fetchone()
        mark = int(found[0]) if found else 0
        span = conn.execute(f"SELECT min(minute), max(minute) FROM {TABLE} WHERE part > {mark}").fetchone()
        removed = 0
        if span is not None and span[0] is not None:
            within = f"minute >= TIMESTAMP {text(span[0])} AND minute <= TIMESTAMP {text(span[1])}"
            # minutes of that span written more than once (the others have one row per key already)
            touched = (
                f"SELECT minute FROM {TABLE} WHERE {within} GROUP BY minute HAVING min(part) < max(part)"
            )
            keys = f"minute, {_DIMS_SQL}"
            same = " AND ".join(f"s.{quote(d)} IS NOT DISTINCT FROM l.{quote(d)}" for d in DIMENSIONS)
            written = conn.execute(
                f"INSERT INTO {TABLE} WITH picked AS (SELECT * FROM {TABLE} WHERE {within} AND minute IN "
                f"({touched})), stats AS (SELECT {keys}, sum(events) AS events, sum(durations) AS durations, "
                "sum(duration_sum) AS duration_sum, min(duration_min) AS duration_min, "
                f"max(duration_max) AS duration_max FROM picked GROUP BY ALL), "
                f"buckets AS (SELECT {keys}, b.k AS k, sum(b.n) AS n FROM "
                f"(SELECT {keys}, unnest(sketch) AS b FROM picked) GROUP BY ALL), "
                f"lists AS (SELECT {keys}, list({{'k': k, 'n': n}} ORDER BY k) AS sketch FROM buckets "
                "GROUP BY ALL) "
                f"SELECT s.minute, {', '.join(f's.{quote(d)}' for d in DIMENSIONS)}, s.events, s.durations, "
                f"s.duration_sum, s.duration_min, s.duration_max, coalesce(l.sketch, []::{_SKETCH_TYPE}), "
                f"{int(part)} FROM stats s LEFT JOIN lists l ON s.minute = l.minute AND {same}"
            ).fetchone()
            deleted = conn.execute(
                f"DELETE FROM {TABLE} WHERE {within} AND part < {int(part)} AND minute IN "
                f"(SELECT DISTINCT minute FROM {TABLE} WHERE part = {int(part)})"
            ).fetchone()
            removed = int(deleted[0] if deleted else 0) - int(written[0] if written else 0)
        conn.execute(f"INSERT OR REPLACE INTO {META_TABLE} VALUES (?, ?)", [_MARK_KEY, str(int(part))])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return removed


def expire(conn: Any, cutoff: str, part: int) -> None:
    """Retention, in the open transaction that deleted the events before ``cutoff`` (RFC 3339): drop
    rollup minutes before it and rebuild the cutoff's own minute from the events left."""
    moment_at = datetime.datetime.fromisoformat(cutoff.replace("Z", "+00:00")).replace(tzinfo=None)
    first = _floor_minute(moment_at)
    following = first + datetime.timedelta(minutes=1) if first < moment_at else first
    conn.execute(f"DELETE FROM {TABLE} WHERE minute < TIMESTAMP {text(following)}")
    if first < moment_at:
        stamp = quote("timestamp")
        conn.execute(
            _insert_from_events(
                f"{stamp} >= TIMESTAMP {text(first)} AND {stamp} < TIMESTAMP {text(following)}", part
            )
        )


# -- DuckDB: reading -----------------------------------------------------------------------------------


def read_sql(request: RollupRequest) -> str:
    """One statement answering ``request`` (see the module docstring); rows as ``answer`` reads them."""
    span = window(request.start, request.end)
    with_sketch = request.sketch
    duration = quote("duration_ms")
    stamp = quote("timestamp")
    columns = STATS + (", sketch" if with_sketch else "")
    parts: list[str] = []
    if span.has_minutes:
        parts.append(
            f"SELECT {_DIMS_SQL}, {columns} FROM {TABLE} WHERE minute >= TIMESTAMP {text(span.first_minute)} "
            f"AND minute < TIMESTAMP {text(span.end_minute)}"
        )
    raw_sketch = (
        f", CASE WHEN {duration} IS NULL THEN []::{_SKETCH_TYPE} ELSE "
        f"[{{'k': {sketch.key_sql(duration)}, 'n': 1}}]::{_SKETCH_TYPE} END AS sketch"
        if with_sketch
        else ""
    )
    for low, high in span.raw_parts:
        parts.append(
            f"SELECT {_DIMS_SQL}, 1 AS events, CAST({duration} IS NOT NULL AS BIGINT) AS durations, "
            f"{duration} AS duration_sum, {duration} AS duration_min, {duration} AS duration_max{raw_sketch} "
            f"FROM {EVENTS_TABLE} WHERE {stamp} >= TIMESTAMP {text(low)} "
            f"AND {stamp} < TIMESTAMP {text(high)}"
        )
    if not parts:  # an empty window
        parts.append(f"SELECT {_DIMS_SQL}, {columns} FROM {TABLE} WHERE FALSE")
    body = " UNION ALL ".join(parts)
    condition = f"({request.where})" if request.where else "TRUE"
    groups = [quote(name) for name in request.group_by]
    picked = ", ".join(groups)
    head = f"{picked}, " if groups else ""
    tail = f" GROUP BY {picked}" if groups else ""
    errors = ", ".join(literal(level) for level in ERROR_LEVELS)
    stats = (
        f"SELECT {head}NULL::INTEGER AS k, sum(events) AS n, "
        f"sum(CASE WHEN {quote('level')} IN ({errors}) THEN events ELSE 0 END) AS errors, "
        "sum(durations) AS durations, sum(duration_sum) AS total, min(duration_min) AS low, "
        f"max(duration_max) AS high FROM picked{tail}"
    )
    sql = f"WITH parts AS ({body}), picked AS (SELECT * FROM parts WHERE {condition}) {stats}"
    if with_sketch:
        sql += (
            f" UNION ALL SELECT {head}b.k, sum(b.n), NULL, NULL, NULL, NULL, NULL FROM "
            f"(SELECT {head}unnest(sketch) AS b FROM picked) GROUP BY {picked}{', ' if groups else ''}b.k"
        )
    return sql


def answer(rows: Sequence[tuple[Any, ...]], request: RollupRequest, max_groups: int) -> RollupAnswer:
    """Rows of a read (group values, then ``k``, then the totals) as groups.

    A row with ``k`` NULL carries a group's totals; the others one bucket of its sketch each. Groups
    with no events (the one row an ungrouped read gives over nothing) answer ``events = 0``.
    """
    groups = len(request.group_by)
    totals: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    buckets: dict[tuple[Any, ...], dict[int, int]] = {}
    for row in rows:
        key, rest = tuple(row[:groups]), row[groups:]
        if rest[0] is None:
            totals[key] = rest[1:]
        else:
            buckets.setdefault(key, {})[int(rest[0])] = int(rest[1])
    found: list[RollupGroup] = []
    for key, (events, errors, durations, total, low, high) in totals.items():
        found.append(
            RollupGroup(
                group=key,
                events=int(events or 0),
                errors=int(errors or 0),
                durations=int(durations or 0),
                duration_sum=None if total is None else float(total),
                duration_min=None if low is None else float(low),
                duration_max=None if high is None else float(high),
                buckets=buckets.get(key, {}) if request.sketch else None,
            )
        )
        if len(found) > max_groups:
            return RollupAnswer(found[:max_groups], truncated=True)
    return RollupAnswer(found)
