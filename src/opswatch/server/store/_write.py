"""The write path's statements, run by the writer thread inside its open transaction.

* ``stored_keys``: which ``(project_id, event_id)`` of a group are stored already (the idempotency
  check, through the ``event_keys`` index);
* ``survivors``: what of a group remains to insert after that check and in-group duplicates;
* ``apply_plan``: the schema work of a key-catalog plan (new columns, copies, widening, the view);
* ``insert_fast`` / ``insert_rows``: the inserts, each one statement over one NDJSON parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import orjson

from . import layout
from .base import SchemaInfo
from .catalog import KeyInfo, Plan
from .layout import CONTAINER, EVENTS_TABLE, SEQ, quote
from .rows import Prepared, is_fast_name, json_lines

#: A record's identity in the store: ``(project_id, event_id)``.
Key = tuple[int | None, str]


def survivors(
    batches: Sequence[Prepared], keys: list[Key], stored: set[Key]
) -> tuple[list[set[int]], list[set[int]], list[list[int]]]:
    """What of a group to leave out: per batch the fast line numbers and the slow row numbers to skip,
    and the positions (in the append) of its new records. A key already stored, or seen earlier in the
    group, is skipped."""
    fast_skips: list[set[int]] = [set() for _ in batches]
    slow_skips: list[set[int]] = [set() for _ in batches]
    if not stored and len(set(keys)) == len(keys):  # the common case: nothing to skip
        return fast_skips, slow_skips, [list(range(len(batch))) for batch in batches]
    seen = set(stored)
    kept: list[list[int]] = [[] for _ in batches]
    for index, batch in enumerate(batches):
        for position, (is_slow, number) in enumerate(_arrival(batch)):
            if is_slow:
                row = batch.slow_rows[number]
                key: Key = (row.get("project_id"), row["event_id"])
            else:
                key = (batch.projects[number], batch.ids[number])
            if key in seen:
                (slow_skips if is_slow else fast_skips)[index].add(number)
            else:
                seen.add(key)
                kept[index].append(position)
    return fast_skips, slow_skips, kept


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


def stored_keys(conn: Any, keys: list[Key], hashes: list[int], day: str) -> set[Key]:
    """Which of ``keys`` (with their ``layout.key_hash`` in ``hashes``) are stored already; records the
    others in ``event_keys`` (arrival ``day``).

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` into the key index answers for the whole group:
    a hash it returns was new. A key whose hash was there already is a duplicate *or* a collision of two
    different keys (rare: see ``layout.py``); those few are checked against
    ``event_rows`` itself, so a collision never loses an event.
    """
    if not keys:
        return set()
    first: dict[int, Key] = {}
    doubtful: list[Key] = []
    seen: set[Key] = set()
    for key, number in zip(keys, hashes, strict=True):
        if key in seen:
            continue
        seen.add(key)
        if number in first:
            doubtful.append(key)  # two keys of one group share a hash: check it for real
        else:
            first[number] = key
    fresh = conn.execute(
        f"INSERT INTO {layout.KEYS_TABLE} SELECT unnest($1::UBIGINT[]), $2::DATE "
        "ON CONFLICT DO NOTHING RETURNING key_hash",
        [list(first), day],
    ).fetchall()
    if len(fresh) < len(first):
        new = {row[0] for row in fresh}
        doubtful += (key for number, key in first.items() if number not in new)
    if not doubtful:
        return set()
    return _in_events(conn, doubtful)


def _in_events(conn: Any, keys: list[Key]) -> set[Key]:
    """Which of ``keys`` are rows of ``event_rows`` (a scan of two columns; only for repeats)."""
    wanted = set(keys)
    ids = list({event_id for _project, event_id in keys})
    sql = f"SELECT project_id, event_id FROM {EVENTS_TABLE} WHERE event_id IN (SELECT unnest(?::VARCHAR[]))"
    return {key for key in conn.execute(sql, [ids]).fetchall() if key in wanted}


def apply_plan(
    conn: Any,
    plan: Plan,
    *,
    table: str = EVENTS_TABLE,
    catalog_table: str = layout.CATALOG_TABLE,
    views: Callable[[Iterable[KeyInfo]], tuple[list[str], SchemaInfo]] = layout.view_statements,
) -> SchemaInfo | None:
    """The schema work of a catalog plan, in the open transaction; the new view schema if it changed.

    ``table``, ``catalog_table`` and ``views`` are the events' by default (the spans pass theirs)."""
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
            f"DELETE FROM {catalog_table} WHERE key IN (SELECT unnest($1))",
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
        conn.execute(f"INSERT OR REPLACE INTO {catalog_table} SELECT {unnest}", values)
    if not plan.view_changed:
        return None
    statements, schema = views(plan.keys.values())
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
