"""What every event store promises, run on each engine: DuckDB, and ClickHouse (the engine in process, chdb).

Appends are durable and idempotent by (project_id, event_id) (retries, repeats inside a batch, restarts); ``tail`` and
``get_events`` give records back as records; the ``logs``/``events`` views show attributes as columns
with camelCase aliases; the seed's three example queries answer as written; retention deletes by event
time. The ClickHouse store answers through ``run_query``: the same guard, then transpiled.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import pytest

from conftest import require_service
from events_cast import (
    CAMPAIGN_SUCCESS,
    NOV_1,
    TOP_CHURCHES,
    TOTAL_DONATIONS,
    donation,
    donations_month,
    log_line,
)
from opswatch.server import limits
from opswatch.server.query import run_query
from opswatch.server.store.base import EventStore, QueryRefused, QueryTimeout, StoreClosed
from opswatch.server.store.duckdb import DuckDBStore
from opswatch.server.traces.model import span_row

DAY = 86_400.0


class Opener(Protocol):
    def __call__(self, **options: Any) -> Any: ...


def _open_duckdb(directory: Path, **options: Any) -> Any:
    return DuckDBStore(directory / "events.duckdb", **options)


def _open_clickhouse(directory: Path, **options: Any) -> Any:
    from opswatch.server.store.clickhouse import open_chdb

    return open_chdb(directory / "clickhouse", **options)


def _http_database(directory: Path) -> str:
    return "opswatch_test_" + hashlib.sha256(str(directory).encode()).hexdigest()[:16]


def _open_clickhouse_http(directory: Path, **options: Any) -> Any:
    """A fresh database per test on the server ``TEST_CLICKHOUSE_URL`` names, over HTTP."""
    from opswatch.server.store.clickhouse import open_url
    from opswatch.server.store.clickhouse_client import HttpClient

    url = os.environ["TEST_CLICKHOUSE_URL"]
    database = _http_database(directory)
    admin = HttpClient(url)
    admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    admin.close()
    return open_url(urlunsplit(urlsplit(url)._replace(path="/" + database)), **options)


ENGINES: dict[str, Callable[..., Any]] = {
    "duckdb": _open_duckdb,
    "clickhouse": _open_clickhouse,
    "clickhouse-http": _open_clickhouse_http,
}
#: The engines this run has: ``clickhouse-http`` only with a real server (``TEST_CLICKHOUSE_URL``); the
#: report header says when it is left out (tests/conftest.py), so its absence is never silent.
ENGINES_HERE: tuple[str, ...] = tuple(
    name for name in sorted(ENGINES) if name != "clickhouse-http" or os.environ.get("TEST_CLICKHOUSE_URL")
)


@pytest.fixture(params=ENGINES_HERE)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the engine's store on one directory (the same data across reopenings); closes what it opened.

    ``clickhouse-http`` runs only against a real server named by ``TEST_CLICKHOUSE_URL``
    (``clickhouse://user:pass@host:8123/default``): there is none on the project's machine or in its
    CI, so it is not among this run's engines then (and the report header says so).
    """
    if request.param == "clickhouse" and importlib.util.find_spec("chdb") is None:
        require_service("chdb", "it is in the dev extra: pip install -e '.[dev]'")
    if request.param == "clickhouse-http" and importlib.util.find_spec("clickhouse_connect") is None:
        require_service("clickhouse-connect", "it is in the clickhouse extra: pip install -e '.[clickhouse]'")
    opened: list[Any] = []

    def opener(**options: Any) -> Any:
        store = ENGINES[request.param](tmp_path, **options)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()
    if request.param == "clickhouse-http" and opened:
        from opswatch.server.store.clickhouse_client import HttpClient

        admin = HttpClient(os.environ["TEST_CLICKHOUSE_URL"])
        admin.command(f"DROP DATABASE IF EXISTS {_http_database(tmp_path)}")
        admin.close()


@pytest.fixture
def store(open_store: Opener) -> Any:
    return open_store(promote_after=3)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rows(store: EventStore, sql: str) -> list[tuple[Any, ...]]:
    return run_query(store, sql).rows


def scalar(store: EventStore, sql: str) -> Any:
    return rows(store, sql)[0][0]


# -- appends ------------------------------------------------------------------------------------------


def test_it_stores_records_and_gives_them_back_as_records(store: EventStore) -> None:
    record = donation(1, church="church-9", amount=25.5, tags={"vip": True}, note=None, error={"type": "E"})
    assert store.append([record]) == 1
    back = store.get_events([record["event_id"]])[record["event_id"]]
    assert back == {k: v for k, v in record.items() if v is not None}


def test_it_counts_only_new_records_when_a_batch_is_retried(store: EventStore) -> None:
    batch = [donation(i, church="church-1", amount=10.0) for i in range(50)]
    assert store.append(batch) == 50
    assert store.append(batch) == 0
    assert store.append([*batch[:10], donation(99, church="church-1", amount=1.0)]) == 1
    assert scalar(store, "SELECT count(*) FROM logs") == 51
    assert store.stats()["events"] == 51


def test_it_stores_an_event_id_once_when_a_batch_repeats_it(store: EventStore) -> None:
    first = donation(1, church="church-1", amount=10.0)
    assert store.append([first, dict(first), donation(2, church="church-1", amount=3.0)]) == 2
    assert scalar(store, "SELECT count(*) FROM logs") == 2


def test_it_keys_idempotency_by_project_and_event_id(store: EventStore) -> None:
    one = donation(1, church="church-1", amount=10.0)
    two = {**one, "project_id": 2, "amount": 20.0}  # the same event id, sent to another project
    assert store.append([one, two]) == 2
    assert store.append([two, one]) == 0
    assert store.get_events([one["event_id"]], project_id=1)[one["event_id"]]["amount"] == 10.0
    assert store.get_events([one["event_id"]], project_id=2)[one["event_id"]]["amount"] == 20.0
    by_project = rows(store, "SELECT project_id, SUM(amount) FROM logs GROUP BY 1 ORDER BY 1")
    assert by_project == [(1, 10.0), (2, 20.0)]


def test_it_answers_the_positions_of_the_new_records(store: EventStore) -> None:
    stored = log_line(1)
    assert store.append_new([stored]) == [0]
    fresh = log_line(2)
    batch = [stored, fresh, dict(fresh), log_line(3), {**stored, "project_id": 2}]
    assert store.append_new(batch) == [1, 3, 4]
    assert store.append_new([fresh, stored]) == []
    assert scalar(store, "SELECT count(*) FROM logs") == 4


def test_it_skips_a_retried_batch_after_a_restart(open_store: Opener) -> None:
    batch = donations_month(300)
    store = open_store()
    assert store.append(batch) == len(batch)
    store.close()
    store = open_store()
    assert store.append(batch) == 0
    assert store.append(batch[::-1]) == 0
    assert scalar(store, "SELECT count(*) FROM logs") == len(batch)
    assert store.stats()["events"] == len(batch)


def test_it_answers_every_caller_of_concurrent_appends(store: EventStore) -> None:
    results: dict[int, int] = {}

    def send(worker: int) -> None:
        results[worker] = store.append([log_line(worker * 1000 + i) for i in range(100)])

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {worker: 100 for worker in range(8)}
    assert scalar(store, "SELECT count(*), count(DISTINCT event_id) FROM logs") == 800
    assert len({r["event_id"] for r in store.tail(limit=1000).records}) == 800


def test_it_refuses_writes_once_closed(open_store: Opener) -> None:
    store = open_store()
    store.close()
    store.close()
    with pytest.raises(StoreClosed):
        store.append([log_line(1)])


def test_it_fills_in_what_a_record_lacks(open_store: Opener) -> None:
    store = open_store(clock=Clock(NOV_1 + DAY))
    stamped = {"message": "no arrival", "event_id": "e1", "timestamp": "2025-11-01T00:00:00.000Z"}
    assert store.append([{"message": "bare"}, stamped]) == 2
    bare, stamped_back = store.tail().records
    assert bare["message"] == "bare"
    assert len(bare["event_id"]) == 32
    assert bare["timestamp"] == bare["received_at"] == "2025-11-02T00:00:00.000Z"
    assert stamped_back["received_at"] == "2025-11-02T00:00:00.000Z"


def test_it_converts_timestamps_with_offsets_to_utc(store: EventStore) -> None:
    store.append([log_line(1, timestamp="2025-11-01T02:00:00+02:00"), log_line(2, timestamp=NOV_1 + 60)])
    assert [r["timestamp"] for r in store.tail().records] == [
        "2025-11-01T00:00:00.000Z",
        "2025-11-01T00:01:00.000Z",
    ]


def test_it_keeps_integers_too_wide_for_a_column(store: EventStore) -> None:
    store.append([log_line(1, big=2**70, nested={"big": 2**80})])
    (record,) = store.tail().records
    assert record["big"] == str(2**70)
    assert record["nested"] == {"big": str(2**80)}


def test_it_stores_a_batch_mixing_plain_and_unusual_records(store: EventStore) -> None:
    store.append([donation(i, church="church-1", amount=1.0) for i in range(5)])  # promotes the keys
    plain = donation(10, church="church-2", amount=2.0)
    odd = [
        donation(11, church="church-2", amount="a lot"),  # a value of another type
        donation(12, church="church-2", amount=3.0, pid=2**40),  # a common field out of range
        donation(13, church="church-2", amount=4.0, timestamp="2025-13-01T00:00:00.000Z"),  # no such month
        donation(14, church="church-2", amount=5.0, brand_new="x"),  # a key never seen
        dict(plain, message="the same event again"),  # a repeat inside the batch
    ]
    assert store.append([plain, *odd]) == 5
    found = store.get_events([f"{i:032x}" for i in range(10, 15)])
    assert found[f"{11:032x}"]["amount"] == "a lot"
    assert found[f"{12:032x}"]["pid"] == 2**40
    assert found[f"{13:032x}"]["timestamp"] == found[f"{13:032x}"]["received_at"]
    assert found[f"{14:032x}"]["brand_new"] == "x"
    assert store.append([plain, *odd]) == 0


# -- attributes as columns ----------------------------------------------------------------------------


def test_it_widens_a_column_when_a_key_changes_type(store: EventStore) -> None:
    store.append([log_line(i, size=i) for i in range(4)])
    store.append([log_line(10, size=2.5)])
    assert scalar(store, "SELECT sum(size) FROM logs") == 8.5
    store.append([log_line(11, size="large")])
    assert "large" in {row[0] for row in rows(store, "SELECT size FROM logs")}


def test_it_keeps_nested_values_in_a_promoted_column(store: EventStore) -> None:
    store.append([log_line(i, tags={"n": i, "names": ["a", "b"]}) for i in range(4)])
    assert store.stats()["promoted_columns"] == 1
    assert [r["tags"] for r in store.tail().records] == [{"n": i, "names": ["a", "b"]} for i in range(4)]
    assert rows(store, "SELECT tags->>'n' FROM logs ORDER BY 1") == [("0",), ("1",), ("2",), ("3",)]


def test_it_matches_keys_without_regard_to_case(store: EventStore) -> None:
    store.append([log_line(i, churchId="c-1") for i in range(3)])
    store.append([log_line(10, churchid="c-2")])
    assert rows(store, "SELECT churchId FROM logs ORDER BY 1") == [("c-1",)] * 3 + [("c-2",)]


def test_it_keeps_keys_past_the_catalog_cap_in_the_container(open_store: Opener) -> None:
    store = open_store(max_catalog_keys=1)
    store.append([log_line(1, kept="a", extra="b")])
    assert "extra" not in store.describe().columns
    assert rows(store, "SELECT attributes->>'extra' FROM logs") == [("b",)]
    assert store.tail().records[0]["extra"] == "b"


def test_it_makes_room_for_another_projects_key_from_the_largest_holder(open_store: Opener) -> None:
    share = limits.STORE_MAX_KEYS_PER_PROJECT
    store = open_store(max_catalog_keys=share + 10)
    for batch in range(6):  # project 2 invents 600 field names: its share (500) is cataloged
        store.append([log_line(batch, project_id=2, **{f"f{batch}_{n}": n for n in range(100)})])
    store.close()
    store = open_store(max_catalog_keys=share + 10)  # the owners are remembered
    store.append([donation(100 + n, church=f"church-{n}", amount=1.0) for n in range(20)])
    assert store.stats()["attribute_keys"] <= share + 10
    assert len(rows(store, TOP_CHURCHES)) == 10  # project 1's keys were cataloged
    assert scalar(store, "SELECT count(*) FROM logs WHERE attributes->>'f0_0' = '0'") == 1


def test_it_promotes_a_hot_key_and_answers_the_same_before_and_after(store: EventStore) -> None:
    store.append([log_line(1, score=1), log_line(2, score=2)])
    assert store.stats()["promoted_columns"] == 0
    assert scalar(store, "SELECT sum(score) FROM logs") == 3  # cold, read from the container
    store.append([log_line(3, score=3), log_line(4, score=4)])
    assert store.stats()["promoted_columns"] == 1
    assert rows(store, "SELECT score FROM logs ORDER BY score") == [(1,), (2,), (3,), (4,)]
    assert [r["score"] for r in store.tail().records] == [1, 2, 3, 4]


def test_it_keeps_the_promotion_across_a_restart(open_store: Opener) -> None:
    store = open_store(promote_after=2)
    store.append([log_line(1, score=1), log_line(2, score=2)])
    store.close()
    store = open_store(promote_after=2)
    assert store.stats()["promoted_columns"] == 1
    store.append([log_line(3, score=3)])
    assert scalar(store, "SELECT sum(score) FROM logs") == 6


def test_it_keeps_cold_keys_queryable_when_no_column_is_left(open_store: Opener) -> None:
    store = open_store(promote_after=1, max_promoted_columns=1)
    store.append([log_line(1, first="a", second=2, third={"x": [1]})])
    assert store.stats()["promoted_columns"] == 1
    assert rows(store, "SELECT first, second + 1, third->>'$.x[0]' FROM logs") == [("a", 3, "1")]


def test_it_answers_camel_case_names_for_snake_case_fields(store: EventStore) -> None:
    store.append([donation(i, church=f"church-{i % 2}", amount=10.0 * i) for i in range(4)])
    assert rows(store, "SELECT churchId, SUM(amount) FROM logs GROUP BY churchId ORDER BY 1") == [
        ("church-0", 20.0),
        ("church-1", 40.0),
    ]
    schema = store.describe()
    assert schema.aliases["churchId"] == "church_id"
    assert schema.aliases["durationMs"] == "duration_ms"
    assert schema.tables == ("logs", "events", "spans")  # ``spans``: since tracing, on both engines
    assert schema.plain_tables == ("spans",)


def test_it_leaves_aliases_out_of_select_star(store: EventStore) -> None:
    store.append([donation(1, church="church-1", amount=1.0)])
    columns = run_query(store, "SELECT * FROM logs").columns
    assert "church_id" in columns and "churchId" not in columns


def test_it_never_lets_an_attribute_shadow_a_common_field(store: EventStore) -> None:
    store.append([log_line(1, Level="loud", attributes="x", seq=5)])
    assert rows(store, "SELECT level FROM logs") == [("info",)]
    back = store.tail().records[0]
    assert (back["Level"], back["attributes"], back["seq"]) == ("loud", "x", 5)


def test_it_answers_null_for_a_json_key_that_is_missing(store: EventStore) -> None:
    store.append([log_line(1, tags={"vip": True, "none": None, "empty": "", "n": 2.5, "deep": {"a": [1]}})])
    found = rows(
        store,
        "SELECT attributes->>'missing', attributes->'missing', tags->>'missing', tags->'missing', "
        "tags->>'none', tags->'none', tags->>'empty', tags->>'vip', tags->>'n', tags->'deep'->'a'->>0, "
        "tags->'deep'->>'missing' FROM logs",
    )
    assert found == [(None, None, None, None, None, "null", "", "true", "2.5", "1", None)]
    assert rows(store, "SELECT count(*) FROM logs WHERE attributes->>'missing' IS NULL") == [(1,)]


def test_it_interpolates_percentiles_between_the_two_nearest_values(store: EventStore) -> None:
    # 10, 20 ... 100 ms and an amount 1 ... 10 each, plus one event with neither: DuckDB's quantile_cont.
    store.append([log_line(k, duration_ms=10.0 * k, amount=k) for k in range(1, 11)] + [log_line(11)])
    durations, amounts = (55.0, 95.5, 99.1), (5.5, 9.55, 9.91)  # p50, p95, p99
    forms = [
        "PERCENTILE_CONT({q}) WITHIN GROUP (ORDER BY {x})",
        "QUANTILE_CONT({x}, {q})",
        "PERCENTILE_CONT({desc}) WITHIN GROUP (ORDER BY {x} DESC)",
    ]
    for form in forms:
        for x, expected in (("duration_ms", durations), ("amount", amounts)):
            fields = ", ".join(form.format(x=x, q=q, desc=round(1 - q, 2)) for q in (0.5, 0.95, 0.99))
            assert rows(store, f"SELECT {fields} FROM logs") == [pytest.approx(expected)], (form, x)
    assert rows(store, "SELECT MEDIAN(amount), QUANTILE_CONT(duration_ms, [0.95, 0.99]) FROM logs") == [
        (pytest.approx(5.5), pytest.approx([95.5, 99.1]))
    ]
    by_level = "SELECT level, QUANTILE_CONT(amount, 0.95) FROM logs WHERE amount > 8 GROUP BY level"
    assert rows(store, by_level) == [("info", pytest.approx(9.95))]
    assert rows(store, "SELECT MEDIAN(amount) FROM logs WHERE amount > 100") == [(None,)]


def test_it_compares_timestamps_to_the_millisecond(store: EventStore) -> None:
    store.append([log_line(k, at=NOV_1 + at, seq=k) for k, at in enumerate((0.1, 0.6, 1.1, 1.45, 1.5))])
    window = (
        "timestamp >= TIMESTAMP '2025-11-01 00:00:00.500' "
        "AND timestamp < CAST('2025-11-01 00:00:01.450' AS TIMESTAMP)"
    )
    assert rows(store, f"SELECT seq FROM logs WHERE {window} ORDER BY seq") == [(1,), (2,)]
    first = "SELECT min(timestamp) FROM logs WHERE timestamp > TIMESTAMP '2025-11-01 00:00:00.100'"
    assert scalar(store, first).isoformat() == "2025-11-01T00:00:00.600000"


# -- the seed's queries -------------------------------------------------------------------------------


@pytest.fixture
def month(store: EventStore) -> list[dict[str, Any]]:
    records = donations_month(2000)
    store.append(records)
    return records


def test_it_runs_the_seeds_total_donations_query(store: EventStore, month: list[dict[str, Any]]) -> None:
    expected = sum(
        r["amount"]
        for r in month
        if r["operation"] == "metrics.donation.completed" and r["timestamp"] > "2025-11-01T00:00:00.000Z"
    )
    result = run_query(store, TOTAL_DONATIONS)
    assert result.columns == ["total_donations"]
    assert result.rows[0][0] == pytest.approx(expected)


def test_it_runs_the_seeds_campaign_success_query(store: EventStore, month: list[dict[str, Any]]) -> None:
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in month:
        if r["operation"] == "metrics.email.campaign_sent":
            pair = sums[(r["campaign_id"], r["campaign_name"])]
            pair[0] += r["success_count"]
            pair[1] += r["recipient_count"]
    result = run_query(store, CAMPAIGN_SUCCESS)
    assert result.columns == ["campaignId", "campaignName", "success_rate"]
    assert {(a, b): pytest.approx(rate) for a, b, rate in result.rows} == {
        key: s / n * 100 for key, (s, n) in sums.items()
    }


def test_it_runs_the_seeds_top_churches_query(store: EventStore, month: list[dict[str, Any]]) -> None:
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for r in month:
        if r["operation"] == "metrics.donation.completed":
            totals[r["church_id"]][0] += 1
            totals[r["church_id"]][1] += r["amount"]
    expected = sorted(((c, int(n), t) for c, (n, t) in totals.items()), key=lambda row: -row[2])[:10]
    result = run_query(store, TOP_CHURCHES)
    assert result.columns == ["churchId", "donation_count", "total_amount"]
    assert [(c, n) for c, n, _ in result.rows] == [(c, n) for c, n, _ in expected]
    assert [t for _, _, t in result.rows] == pytest.approx([t for _, _, t in expected])


def test_it_answers_events_as_well_as_logs(store: EventStore, month: list[dict[str, Any]]) -> None:
    assert rows(store, "SELECT count(*) FROM events") == [(len(month),)]


#: The seed's queries and more camelCase: the same answers, row for row, on DuckDB and on ClickHouse.
ALIKE = [
    TOTAL_DONATIONS,
    CAMPAIGN_SUCCESS + "ORDER BY campaignId",
    TOP_CHURCHES,
    "SELECT churchId, campaignId, donorId, count(*) AS n, avg(amount) AS mean FROM logs "
    "WHERE operation = 'metrics.donation.completed' GROUP BY churchId, campaignId, donorId ORDER BY 1, 2, 3",
    "SELECT successCount, recipientCount, campaignName FROM events WHERE successCount IS NOT NULL "
    "ORDER BY timestamp, campaignName LIMIT 20",
    "SELECT count(*) AS n, count(campaignName) AS named, min(timestamp) AS first, max(receivedAt) AS last FROM logs",
]


def test_duckdb_and_clickhouse_answer_the_seeds_queries_alike(tmp_path: Path) -> None:
    if importlib.util.find_spec("chdb") is None:
        require_service("chdb", "it is in the dev extra: pip install -e '.[dev]'")
    month = donations_month(2000)
    duck, house = _open_duckdb(tmp_path, promote_after=3), _open_clickhouse(tmp_path, promote_after=3)
    try:
        for store in (duck, house):
            store.append(month[:500])  # keys promoted part way, as on a live server
            store.append(month[500:])
        for sql in ALIKE:
            on_duckdb, on_clickhouse = run_query(duck, sql), run_query(house, sql)
            assert on_clickhouse.columns == on_duckdb.columns, sql
            assert len(on_clickhouse.rows) == len(on_duckdb.rows) > 0, sql
            for mine, theirs in zip(on_clickhouse.rows, on_duckdb.rows, strict=True):
                # floats within 1e-9 of each other: sums in another order differ in the last bits, and a
                # mean right on a rounding boundary printed 241.622188 against 241.622187
                assert _alike(mine, theirs), (sql, mine, theirs)
    finally:
        duck.close()
        house.close()


def _alike(mine: Sequence[Any], theirs: Sequence[Any]) -> bool:
    """The same values, floats within 1e-9 of each other (relative or absolute), the rest equal."""
    return len(mine) == len(theirs) and all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) if isinstance(a, float) and isinstance(b, float) else a == b
        for a, b in zip(mine, theirs, strict=True)
    )


# -- reads --------------------------------------------------------------------------------------------


def test_it_tails_new_records_after_a_cursor(store: EventStore) -> None:
    store.append([log_line(1, message="first"), log_line(2, message="second")])
    page = store.tail(limit=1)
    assert [r["message"] for r in page.records] == ["second"]
    assert store.tail(page.cursor).records == []
    store.append([log_line(3, message="third")])
    assert [r["message"] for r in store.tail(page.cursor).records] == ["third"]


def test_it_filters_the_tail_by_level_operation_and_text(store: EventStore) -> None:
    store.append(
        [
            log_line(1, level="info", message="Card charged", operation="payment.charge"),
            log_line(2, level="error", message="Card declined", operation="payment.charge"),
            log_line(3, level="fatal", message="DB down", operation="db.connect"),
            log_line(4, level="error", message="card expired", operation="payment.refund"),
        ]
    )

    def messages(**filters: Any) -> list[str]:
        return [r["message"] for r in store.tail(**filters).records]

    assert messages(level="error") == ["Card declined", "DB down", "card expired"]
    assert messages(operation="payment.*", text="CARD", level="warn") == ["Card declined", "card expired"]
    assert messages(operation="db.connect") == ["DB down"]
    assert messages(kind="error", project_id=2) == []
    with pytest.raises(ValueError):
        store.tail(level="loud")


def test_it_finds_events_by_id_within_a_project(store: EventStore) -> None:
    store.append([log_line(1), log_line(2)])
    wanted = [log_line(1)["event_id"], "f" * 32]
    assert list(store.get_events(wanted)) == [log_line(1)["event_id"]]
    assert store.get_events(wanted, project_id=2) == {}


def test_it_cuts_an_answer_at_the_row_cap(store: EventStore) -> None:
    store.append([log_line(i) for i in range(30)])
    result = run_query(store, "SELECT event_id FROM logs", max_rows=10)
    assert (len(result.rows), result.truncated) == (10, True)
    assert result.cut_by == "rows"


def test_it_cuts_an_answer_at_the_size_cap(store: EventStore) -> None:
    store.append([log_line(i, message="x" * 1000) for i in range(30)])
    result = store.query("SELECT message FROM logs", max_rows=100, timeout=10, max_bytes=5_500)
    assert (len(result.rows), result.truncated, result.cut_by) == (5, True, "bytes")
    whole = store.query("SELECT message FROM logs", max_rows=100, timeout=10, max_bytes=40_000)
    assert (len(whole.rows), whole.truncated, whole.cut_by) == (30, False, None)


def test_it_stops_a_query_that_runs_too_long(store: EventStore) -> None:
    store.append([log_line(i) for i in range(3000)])
    with pytest.raises(QueryTimeout, match=r"longer than 0\.2 s"):
        run_query(store, "SELECT count(*) FROM logs a, logs b, logs c", max_rows=10, timeout=0.2)
    assert scalar(store, "SELECT count(*) FROM logs") == 3000  # the store still answers


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT name FROM system.users", r"qualified table names are not allowed \(system\.users\)"),
        ("SELECT * FROM system.tables", r"qualified table names are not allowed"),
        ("SELECT * FROM information_schema.tables", r"qualified table names are not allowed"),
        ("SELECT * FROM default.event_rows", r"qualified table names are not allowed"),
        ("SELECT * FROM event_rows", r"unknown table 'event_rows'; the tables are logs, events, spans"),
        ("SELECT * FROM url('http://127.0.0.1:9/x', 'CSV')", r"table functions are not allowed"),
        ("SELECT * FROM remote('127.0.0.1:9000', system.one)", r"table functions are not allowed"),
        ("SELECT * FROM s3('http://127.0.0.1:9/b/k.csv')", r"table functions are not allowed"),
        ("SELECT * FROM file('/etc/passwd')", r"unknown table 'file'"),  # DuckDB reads a name here
        ("SELECT * FROM logs WHERE message IN (SELECT name FROM system.users)", r"qualified table names"),
    ],
)
def test_it_lets_user_sql_read_only_the_opswatch_tables(store: EventStore, sql: str, reason: str) -> None:
    store.append([log_line(1)])
    with pytest.raises(QueryRefused, match=reason):
        run_query(store, sql)


# -- retention ----------------------------------------------------------------------------------------


def test_it_deletes_events_older_than_the_retention(open_store: Opener) -> None:
    store = open_store(clock=Clock(NOV_1 + 40 * DAY))
    store.append([log_line(i, at=NOV_1 + i * DAY) for i in range(20)])
    assert store.delete_older_than(30) == 10
    assert store.stats()["events"] == 10
    assert scalar(store, "SELECT count(*) FROM logs") == 10
    assert min(r["timestamp"] for r in store.tail().records).startswith("2025-11-11")
    assert store.delete_older_than(30) == 0


def test_it_never_hands_out_a_cursor_twice_after_retention_emptied_the_store(open_store: Opener) -> None:
    clock = Clock(NOV_1)
    store = open_store(clock=clock)
    store.append([log_line(i) for i in range(5)])
    cursor = store.tail().cursor
    clock.now += 40 * DAY
    assert store.delete_older_than(30) == 5
    store.close()
    store = open_store(clock=clock)
    store.append([log_line(10, message="after the restart")])
    assert [r["message"] for r in store.tail(cursor).records] == ["after the restart"]


def test_it_deletes_by_the_moment_not_by_the_day(open_store: Opener) -> None:
    store = open_store(clock=Clock(NOV_1 + 31.5 * DAY))  # cutoff: Nov 2, 12:00
    store.append([log_line(k, at=NOV_1 + k * 6 * 3600) for k in range(12)])  # every 6 h for 3 days
    assert store.delete_older_than(30) == 6  # Nov 1 00/06/12/18, Nov 2 00/06
    stamps = sorted(r["timestamp"] for r in store.tail().records)
    assert stamps[0] == "2025-11-02T12:00:00.000Z"
    assert scalar(store, "SELECT count(*) FROM logs") == 6


# -- spans --------------------------------------------------------------------------------------------

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def span(
    span_id: str, *, start: float = NOV_1, ms: float = 10.0, project: int = 1, **fields: Any
) -> dict[str, Any]:
    """A span row as every span source hands it to the store."""
    start_ns = round(start * 1e6) * 1000
    row = span_row(
        trace_id=fields.pop("trace", TRACE),
        span_id=span_id,
        parent_span_id=fields.pop("parent", None),
        name=fields.pop("name", "GET /donations"),
        kind=fields.pop("kind", "server"),
        start_ns=start_ns,
        end_ns=start_ns + int(ms * 1e6),
        status="ok",
        resource={"service": "api", "environment": "prod"},
        attributes=fields.pop("attributes", {"http.route": "/donations"}),
        received_at="2025-11-01T00:00:01.000Z",
    )
    row["project_id"] = project
    return row


def test_it_stores_a_span_once_by_project_trace_and_span_id(open_store: Opener) -> None:
    store = open_store()
    root, child = span("00f067aa0ba902b7"), span("b7ad6b7169203331", parent="00f067aa0ba902b7", ms=4.5)
    assert store.append_spans([root, child, root]) == 2
    assert store.append_spans([child]) == 0
    assert store.append_spans([{**child, "project_id": 2}]) == 1  # the same ids in another project
    store.close()
    store = open_store()
    assert store.append_spans([root, child]) == 0
    found = rows(
        store, "SELECT project_id, span_id, parentSpanId, duration_ms, service FROM spans ORDER BY 1, 2"
    )
    assert found == [
        (1, "00f067aa0ba902b7", None, 10.0, "api"),
        (1, "b7ad6b7169203331", "00f067aa0ba902b7", 4.5, "api"),
        (2, "b7ad6b7169203331", "00f067aa0ba902b7", 4.5, "api"),
    ]
    assert store.stats()["spans_written"] == 0  # counts this opening's writes


def test_it_keeps_span_microseconds_and_computes_the_end(store: EventStore) -> None:
    store.append_spans([span("00f067aa0ba902b7", start=NOV_1 + 0.000_123, ms=2.5, attributes={"db.rows": 3})])
    start, end, attribute = rows(
        store, """SELECT timestamp, end_timestamp, attributes->>'$."db.rows"' FROM spans"""
    )[0]
    assert start.microsecond == 123
    assert (end - start).total_seconds() == pytest.approx(0.0025)
    assert attribute == "3"


def test_it_joins_spans_with_logs_on_the_trace_id(store: EventStore) -> None:
    store.append_spans([span("00f067aa0ba902b7", name="POST /donate")])
    store.append(
        [log_line(1, message="charged", trace_id=TRACE), log_line(2, message="other", trace_id="1" * 32)]
    )
    joined = rows(store, "SELECT s.name, l.message FROM spans s JOIN logs l ON l.trace_id = s.trace_id")
    assert joined == [("POST /donate", "charged")]


def test_it_deletes_spans_older_than_the_span_retention(open_store: Opener) -> None:
    store = open_store(clock=Clock(NOV_1 + 40 * DAY))
    store.append_spans([span(f"{i + 1:016x}", start=NOV_1 + i * DAY) for i in range(20)])
    assert store.delete_spans_older_than(30) == 10
    assert scalar(store, "SELECT min(timestamp) FROM spans").isoformat().startswith("2025-11-11")
    assert store.delete_spans_older_than(30) == 0
    assert scalar(store, "SELECT count(*) FROM spans") == 10


# -- span attributes through their key catalog ----------------------------------------------------------


def test_span_attribute_keys_are_columns_of_the_spans_view_under_their_own_names(store: EventStore) -> None:
    store.append_spans([span("00f067aa0ba902b7", attributes={"http.route": "/donations/{id}", "db.rows": 3}),
                        span("b7ad6b7169203331", attributes={"http.route": "/health"})])  # fmt: skip
    found = rows(store, """SELECT span_id, "db.rows" + 1 FROM spans WHERE "http.route" = '/donations/{id}'""")
    assert found == [("00f067aa0ba902b7", 4)]
    assert "http.route" in run_query(store, "SELECT * FROM spans").columns
    assert "http.route" not in run_query(store, "SELECT * FROM logs").columns  # a catalog of their own


def test_a_recurring_span_attribute_key_is_promoted_and_earlier_spans_are_filled_in(
    open_store: Opener,
) -> None:
    store = open_store(promote_after=3)
    store.append_spans([span("0000000000000001", attributes={"http.route": "/a", "db.rows": 1})])
    assert store.span_catalog.keys["http.route"].column is None
    store.append_spans([span(f"{i:016x}", attributes={"http.route": f"/{i}"}) for i in (2, 3)])
    assert store.span_catalog.keys["http.route"].column == "a_http_route"
    assert store.span_catalog.keys["db.rows"].column is None  # seen once
    store.close()
    store = open_store(promote_after=3)
    store.append_spans([span("0000000000000004", attributes={"http.route": "/4"})])
    found = rows(
        store, """SELECT "http.route", attributes->>'$."http.route"', "db.rows" FROM spans ORDER BY span_id"""
    )
    assert found == [("/a", "/a", 1), ("/2", "/2", None), ("/3", "/3", None), ("/4", "/4", None)]


def test_a_promoted_span_attribute_column_widens_when_a_value_of_another_type_arrives(
    open_store: Opener,
) -> None:
    store = open_store(promote_after=2)
    store.append_spans([span(f"{i:016x}", attributes={"retries": i}) for i in (1, 2)])
    assert store.span_catalog.keys["retries"].type == "BIGINT"
    store.append_spans([span("0000000000000003", attributes={"retries": "many"})])
    assert store.span_catalog.keys["retries"].type == "VARCHAR"
    assert rows(store, 'SELECT "retries" FROM spans ORDER BY span_id') == [("1",), ("2",), ("many",)]


def test_a_span_attribute_named_like_a_span_column_stays_in_attributes(store: EventStore) -> None:
    store.append_spans([span("00f067aa0ba902b7", name="GET /", attributes={"name": "shadow", "Status": "x"})])
    found = rows(store, """SELECT name, status, attributes->>'$.name' FROM spans""")
    assert found == [("GET /", "ok", "shadow")]


def test_it_describes_an_unchanged_schema_with_the_same_object_once_spans_are_stored(store: Any) -> None:
    """Readers cache work per schema by identity (the rules check a SQL rule once per schema)."""
    store.append_spans([span("00f067aa0ba902b7", attributes={"db.rows": 3})])
    first = store.describe()
    assert "spans" in first.tables
    assert store.describe() is first
