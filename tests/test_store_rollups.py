"""What the per-minute rollups promise, on each engine (DuckDB, and ClickHouse in process): every stored
event counted once in its minute (retries and repeated ids are not), across restarts, rebuilt when
switched back on, and cut by retention exactly as the events are. Reads here use windows on whole minutes,
so they come from the rollup alone."""

from __future__ import annotations

import datetime
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import test_store_contract as contract
from opswatch.record import format_timestamp
from opswatch.server import limits
from opswatch.server.store import sketch
from opswatch.server.store.duckdb import DuckDBStore
from opswatch.server.store.rollups import DIMENSIONS, RollupGroup, RollupRequest
from test_store_contract import Clock, Opener

open_store = contract.open_store  # the engines of the store contract, one directory per test

T0 = 1_795_953_600.0  # 2026-11-29T12:00:00Z, on a minute
DAY = 86_400.0


def event(n: int, at: float, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timestamp": format_timestamp(at),
        "level": ("info", "warning", "error", "fatal")[n % 4],
        "message": "m",
        "event_id": f"{n:032x}",
        "project_id": 1 + n % 2,
        "kind": ("log", "error", "transaction")[n % 3],
        "service": ("checkout", "search", None)[n % 3 - 1],
        "operation": ("api.pay", "api.find")[n % 2],
    }
    if n % 5:
        record["environment"] = "production"
    if n % 7:
        record["duration_ms"] = float(n * 13 % 900) + 0.5
    record.update(fields)
    return record


def expected(
    records: list[dict[str, Any]],
) -> dict[tuple[Any, ...], tuple[int, int, int, float | None, dict[int, int]]]:
    """Per (minute, dimensions): events, errors, durations, their sum and sketch, from the records."""
    found: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, None, {}])
    for r in records:
        at = datetime.datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
        minute = at.replace(second=0, microsecond=0).timestamp()
        totals = found[(minute, *(r.get(d) for d in DIMENSIONS))]
        totals[0] += 1
        totals[1] += r["level"] in ("error", "fatal")
        if "duration_ms" in r:
            totals[2] += 1
            totals[3] = (totals[3] or 0.0) + r["duration_ms"]
            totals[4] = sketch.merge(totals[4], {sketch.key(r["duration_ms"]): 1})
    return {key: tuple(value) for key, value in found.items()}


def rolled_up(
    store: Any, start: float, end: float
) -> dict[tuple[Any, ...], tuple[int, int, int, float | None, dict[int, int]]]:
    """The rollup minute by minute (one read per minute), keyed as ``expected``."""
    found: dict[tuple[Any, ...], tuple[int, int, int, float | None, dict[int, int]]] = {}
    minute = start
    while minute < end:
        answer = store.read_rollups(
            RollupRequest(minute, minute + 60, DIMENSIONS, sketch=True),
            max_groups=limits.RULES_MAX_INSTANCES,
            timeout=10,
        )
        assert answer is not None and not answer.truncated
        group: RollupGroup
        for group in answer.groups:
            total = None if group.duration_sum is None else round(group.duration_sum, 6)
            found[(minute, *group.group)] = (
                group.events,
                group.errors,
                group.durations,
                total,
                group.buckets or {},
            )
        minute += 60
    return found


def rounded(totals: dict[tuple[Any, ...], tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {
        key: (*value[:3], None if value[3] is None else round(value[3], 6), value[4])
        for key, value in totals.items()
    }


def test_it_counts_each_stored_event_once_in_its_minute_whatever_the_retries(open_store: Opener) -> None:
    store = open_store()
    records = [event(n, T0 + n * 7.25) for n in range(1, 80)]
    assert store.append(records[:50]) == 50
    assert store.append(records[:60]) == 10  # a retry of the first 50 with 10 more
    assert store.append([*records[60:], *records[60:70]]) == 19  # a batch repeating ids
    assert rolled_up(store, T0, T0 + 600) == rounded(expected(records))


def test_it_keeps_the_rollup_across_a_restart_and_rebuilds_one_that_was_switched_off(
    open_store: Opener,
) -> None:
    records = [event(n, T0 + n * 11.5) for n in range(1, 60)]
    store = open_store()
    store.append(records[:20])
    store.close()
    store = open_store(rollups=False)  # events stored meanwhile are in no rollup ...
    assert store.read_rollups(RollupRequest(T0, T0 + 60), max_groups=10, timeout=10) is None
    store.append(records[20:40])
    store.close()
    store = open_store()  # ... so switching rollups back on rebuilds it from the stored events
    store.append(records[40:])
    assert rolled_up(store, T0, T0 + 720) == rounded(expected(records))


def test_it_cuts_the_rollup_at_the_retention_as_the_events(open_store: Opener) -> None:
    clock = Clock(T0 + DAY + 330.5)  # the cutoff of one day's retention falls in minute 5, at 30.5 s
    store = open_store(clock=clock)
    records = [event(n, T0 + n * 9.0) for n in range(1, 66)]
    store.append(records)
    deleted = store.delete_older_than(1)
    kept = [r for r in records if r["timestamp"] >= format_timestamp(T0 + 330.5)]
    assert deleted == len(records) - len(kept) > 0
    assert rolled_up(store, T0, T0 + 600) == rounded(expected(kept))


def test_it_merges_the_rows_of_a_minute_every_so_many_rollup_rows_written(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "events.duckdb", rollup_compact_rows=3) as store:

        def rows() -> int:
            return int(store.query("SELECT count(*) FROM rollup_minutes", max_rows=1, timeout=10).rows[0][0])

        same = {
            "service": "checkout",
            "operation": "api.pay",
            "level": "info",
            "kind": "log",
            "project_id": 1,
        }
        records = [event(n, T0 + n, **same, environment="production") for n in range(1, 8)]
        store.append(records[:1])
        store.append(records[1:2])
        assert rows() == 2  # one row per commit: 2 written, under the limit of 3
        store.append(records[2:3])
        assert rows() == 1  # the third reached it: merged into one row for the minute
        for record in records[3:]:
            store.append([record])
        assert rows() == 2  # 3 .. 6 merged at 6, 7 written since
        assert rolled_up(store, T0, T0 + 60) == rounded(expected(records))


def test_it_counts_a_clickhouse_insert_once_when_its_lost_answer_is_retried(tmp_path: Path) -> None:
    """The insert reached ClickHouse but its answer was lost: the store sends the block again with the same
    deduplication token, and neither the events nor the rollup's materialized view take it twice."""
    pytest.importorskip("chdb")
    from opswatch.server.store.clickhouse import open_chdb
    from opswatch.server.store.clickhouse_client import TransportError

    with open_chdb(tmp_path / "clickhouse") as store:
        client = store._client
        sent = client.insert_json
        lost: list[str] = []

        def insert_then_lose_the_answer(table: str, lines: bytes, settings: Any = None) -> None:
            sent(table, lines, settings)
            if table == "event_rows" and not lost:
                lost.append(table)
                raise TransportError("connection reset while reading the answer")

        client.insert_json = insert_then_lose_the_answer
        records = [event(n, T0 + n * 3.0) for n in range(1, 30)]
        assert store.append(records) == len(records)
        assert lost == ["event_rows"]
        assert store.query("SELECT count() FROM event_rows", max_rows=1, timeout=10).rows == [(len(records),)]
        assert rolled_up(store, T0, T0 + 120) == rounded(expected(records))
