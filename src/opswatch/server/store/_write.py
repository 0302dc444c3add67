"""The write path's statements, run by the writer thread inside its open transaction.

* ``stored_ids``: which event ids of a group are stored already (the idempotency check);
* ``survivors``: what of a group remains to insert after that check and in-group duplicates;
* ``apply_plan``: the schema work of a key-catalog plan (new columns, copies, widening, the view);
* ``insert_fast`` / ``insert_rows``: the inserts, each one statement over one NDJSON parameter.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator, Sequence
from typing import Any, Final

import orjson

from . import layout
from .base import SchemaInfo
from .catalog import KeyInfo, Plan
from .layout import CONTAINER, EVENTS_TABLE, SEQ, quote
from .rows import Prepared, is_fast_name, json_lines

_MAX_RANGES: Final = 8
#: Stamps closer than this share one look-up range (a range costs a little; a wide one scans more rows).
_RANGE_GAP: Final = datetime.timedelta(seconds=1)
#: Up to this many ids, the look-up names them in the statement itself.
_MAX_LITERAL_IDS: Final = 1000
_CANONICAL: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def survivors(
    batches: Sequence[Prepared], ids: list[str], stored: set[str]
) -> tuple[list[set[int]], list[set[int]], list[int]]:
    """What of a group to leave out: per batch the fast line numbers and the slow row numbers to skip,
    and the new rows per batch. An id already stored, or seen earlier in the group, is skipped."""
    fast_skips: list[set[int]] = [set() for _ in batches]
    slow_skips: list[set[int]] = [set() for _ in batches]
    if not stored and len(set(ids)) == len(ids):  # the common case: nothing to skip
        return fast_skips, slow_skips, [len(batch) for batch in batches]
    seen = set(stored)
    counts = [0] * len(batches)
    for index, batch in enumerate(batches):
        for is_slow, number in _arrival(batch):
            event_id = batch.slow_rows[number]["event_id"] if is_slow else batch.ids[number]
            if event_id in seen:
                (slow_skips if is_slow else fast_skips)[index].add(number)
            else:
                seen.add(event_id)
                counts[index] += 1
    return fast_skips, slow_skips, counts


def _arrival(batch: Prepared) -> Iterator[tuple[bool, int]]:
    """``(is_slow, fast line or slow row number)`` for each record of ``batch``, in arrival order."""
    slow_at = batch.slow_at
    line = slot = 0
    for position in range(len(batch)):
        if slot < len(slow_at) and slow_at[slot] == position:
            yield True, slot
            slot += 1
        else:
            yield False, line
            line += 1


def arrival_seqs(
    batches: Sequence[Prepared], fast_skips: list[set[int]], slow_skips: list[set[int]], first: int
) -> tuple[list[int], list[int]]:
    """``seq`` numbers in arrival order for the kept fast lines and the kept slow rows of a group that
    has slow rows (without any, the fast lines are simply numbered in order)."""
    fast_seqs: list[int] = []
    slow_seqs: list[int] = []
    seq = first
    for batch, fast_skip, slow_skip in zip(batches, fast_skips, slow_skips, strict=True):
        for is_slow, number in _arrival(batch):
            if number in (slow_skip if is_slow else fast_skip):
                continue
            (slow_seqs if is_slow else fast_seqs).append(seq)
            seq += 1
    return fast_seqs, slow_seqs


def stored_ids(conn: Any, ids: list[str], stamps: list[str]) -> set[str]:
    """Which of ``ids`` are stored already, looked up only at the times their timestamps name.

    A retried record carries the same timestamp, so only rows within the batch's own timestamps can hold
    its ids: the distinct stamps are merged into at most ``_MAX_RANGES`` closed ranges (stamps less than
    ``_RANGE_GAP`` apart share one), and the zone maps on ``timestamp`` skip every row group outside
    them. Up to ``_MAX_LITERAL_IDS`` ids go into the statement as a literal list, which DuckDB binds
    and runs in about half the time of a list parameter; more go as one parameter (a hash semi-join).
    """
    if not ids:
        return set()
    ranges = _stamp_ranges(stamps)
    column = quote("timestamp")
    # Literal bounds (not parameters) so the scan's zone maps prune by them.
    when = " OR ".join(
        f"({column} >= TIMESTAMP '{start}' AND {column} <= TIMESTAMP '{end}')" for start, end in ranges
    )
    if len(ids) <= _MAX_LITERAL_IDS and all(type(i) is str and "\x00" not in i for i in ids):
        wanted = ", ".join(layout.literal(event_id) for event_id in dict.fromkeys(ids))
        sql = f"SELECT event_id FROM {EVENTS_TABLE} WHERE ({when}) AND event_id IN ({wanted})"
        return {row[0] for row in conn.execute(sql).fetchall()}
    sql = f"SELECT event_id FROM {EVENTS_TABLE} WHERE ({when}) AND event_id IN (SELECT unnest(?::VARCHAR[]))"
    return {row[0] for row in conn.execute(sql, [ids]).fetchall()}


def _stamp_ranges(stamps: list[str]) -> list[tuple[str, str]]:
    """Closed ``[first, last]`` ranges (as DuckDB timestamp text) covering every stamp of ``stamps``.

    Stamps are the store's canonical text (``YYYY-MM-DDTHH:MM:SS.mmmZ``), whose text order is time
    order; any other text falls back to the whole hours it names (the old, wider look-up)."""
    distinct = sorted(set(stamps))
    if not all(_CANONICAL.fullmatch(stamp) for stamp in distinct):
        return _hour_ranges(distinct)
    ranges: list[list[datetime.datetime]] = []
    for stamp in distinct:
        moment = datetime.datetime.fromisoformat(stamp[:23])
        if ranges and moment - ranges[-1][1] <= _RANGE_GAP:
            ranges[-1][1] = moment
        else:
            ranges.append([moment, moment])
    if len(ranges) > _MAX_RANGES:
        ranges = [[ranges[0][0], ranges[-1][1]]]
    return [(start.isoformat(), end.isoformat()) for start, end in ranges]


def _hour_ranges(stamps: list[str]) -> list[tuple[str, str]]:
    ranges: list[tuple[str, str]] = []
    for hour in sorted({stamp[:13] for stamp in stamps}):
        start = datetime.datetime.strptime(hour, "%Y-%m-%dT%H")
        end = start + datetime.timedelta(hours=1) - datetime.timedelta(microseconds=1)
        if ranges and ranges[-1][1] == (start - datetime.timedelta(microseconds=1)).isoformat():
            ranges[-1] = (ranges[-1][0], end.isoformat())
        else:
            ranges.append((start.isoformat(), end.isoformat()))
    if len(ranges) > _MAX_RANGES:
        ranges = [(ranges[0][0], ranges[-1][1])]
    return ranges


def apply_plan(conn: Any, plan: Plan) -> SchemaInfo | None:
    """The schema work of a catalog plan, in the open transaction; the new view schema if it changed."""
    table = EVENTS_TABLE
    for info in plan.promoted:
        assert info.column is not None
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {quote(info.column)} {layout.sql_type(info)}")
    for info in plan.backfill:
        assert info.column is not None and info.cold_first and info.cold_last
        column = quote("timestamp")
        conn.execute(
            f"UPDATE {table} SET {quote(info.column)} = {layout.cold_expression(info)} "
            f"WHERE {column} >= ?::TIMESTAMP AND {column} <= ?::TIMESTAMP "
            f"AND json_exists({quote(CONTAINER)}, {layout.json_pointer(info.name)})",
            [info.cold_first, info.cold_last],
        )
    for info in plan.widened:
        assert info.column is not None
        column_type = layout.sql_type(info)
        conn.execute(f"ALTER TABLE {table} ALTER COLUMN {quote(info.column)} SET DATA TYPE {column_type}")
    if plan.removed:
        conn.execute(
            f"DELETE FROM {layout.CATALOG_TABLE} WHERE key IN (SELECT unnest($1))",
            [[info.key for info in plan.removed]],
        )
    if plan.changed:
        fields = ("key", "name", "type", "column_name", "seen", "cold_first", "cold_last", "project_id")
        values = [
            [info.key for info in plan.changed],
            [info.name for info in plan.changed],
            [info.type for info in plan.changed],
            [info.column for info in plan.changed],
            [info.seen for info in plan.changed],
            [info.cold_first for info in plan.changed],
            [info.cold_last for info in plan.changed],
            [info.project_id for info in plan.changed],
        ]
        unnest = ", ".join(f"unnest(${i + 1}) AS {name}" for i, name in enumerate(fields))
        conn.execute(f"INSERT OR REPLACE INTO {layout.CATALOG_TABLE} SELECT {unnest}", values)
    if not plan.view_changed:
        return None
    statements, schema = layout.view_statements(plan.keys.values())
    for statement in statements:
        conn.execute(statement)
    return schema


def _column_types(keys: dict[str, KeyInfo]) -> dict[str, str]:
    types: dict[str, str] = {SEQ: "BIGINT", CONTAINER: "JSON"}
    types.update((column.name, column.sql_type) for column in layout.CORE_COLUMNS)
    types.update((info.column, info.type) for info in keys.values() if info.column)
    return types


def insert_rows(conn: Any, rows: list[dict[str, Any]], keys: dict[str, KeyInfo]) -> None:
    """Insert rows keyed by column name as one NDJSON text, split and parsed by ``from_json`` in C++.

    One parameter instead of a Python value per cell: per-value conversion from Python costs more than
    the insert itself. (One JSON array unnested as a whole measured 2.7x the CPU of per-line parsing.)
    """
    types = _column_types(keys)
    present: set[str] = set().union(*rows)
    columns = [column for column in types if column in present]
    structure = orjson.dumps({column: types[column] for column in columns}).decode()
    names = ", ".join(quote(column) for column in columns)
    picks = ", ".join(f"r.{quote(column)}" for column in columns)
    conn.execute(
        f"INSERT INTO {EVENTS_TABLE} ({names}) SELECT {picks} FROM (SELECT from_json(line, "
        f"{layout.literal(structure)}) AS r FROM (SELECT unnest(string_split(?, chr(10))) AS line))",
        [json_lines(rows).decode()],
    )


def insert_fast(
    conn: Any, lines: bytes, seqs: int | list[int], keys: dict[str, KeyInfo], now: str
) -> None:
    """Insert fast lines: the records as they came, keyed by field name; ``from_json`` maps each field
    to its column (common fields by name, promoted keys to ``a_<key>``). ``seqs`` is the first ``seq``
    (the lines are numbered in order) or one number per line."""
    promoted = {info.name: info for info in keys.values() if info.column and is_fast_name(info.name)}
    structure: dict[str, str] = {column.name: column.sql_type for column in layout.CORE_COLUMNS}
    columns = [SEQ, *structure]
    picks = ["? + i - 1" if isinstance(seqs, int) else "list_extract(?::BIGINT[], i)"]
    picks += [f"r.{quote(name)}" for name in structure]
    picks[columns.index("received_at")] = "coalesce(r.received_at, ?::TIMESTAMP)"
    for name, info in promoted.items():
        assert info.column is not None
        structure[name] = info.type
        columns.append(info.column)
        picks.append(f"r.{quote(name)}")
    text = orjson.dumps(structure).decode()
    conn.execute(
        f"INSERT INTO {EVENTS_TABLE} ({', '.join(quote(c) for c in columns)}) SELECT {', '.join(picks)} "
        f"FROM (SELECT from_json(line, {layout.literal(text)}) AS r, i FROM (SELECT unnest(l) AS line, "
        "unnest(range(1, len(l) + 1)) AS i FROM (SELECT string_split(?, chr(10)) AS l)))",
        [seqs, now, lines.decode()],
    )
