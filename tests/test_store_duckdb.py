"""The embedded event store: durable, idempotent appends; the key catalog; reads; retention; schema."""

from __future__ import annotations

import os
import random
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import orjson
import pytest

from events_cast import NOV_1, donation, donations_month, log_line
from killed_writer import acknowledged_before_kill
from opswatch.config import ConfigError
from opswatch.server.store.base import QueryError, QueryTimeout, StoreClosed
from opswatch.server.store.duckdb import DuckDBStore, StoreError
from opswatch.server.store.retention import RetentionJob

DAY = 86_400.0


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "events.duckdb"


@pytest.fixture
def store(store_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(store_path, promote_after=3, idle_checkpoint_seconds=60) as opened:
        yield opened


def rows(store: DuckDBStore, sql: str) -> list[tuple[object, ...]]:
    return store.query(sql, max_rows=10_000, timeout=10).rows


def scalar(store: DuckDBStore, sql: str) -> object:
    return rows(store, sql)[0][0]


# -- appends ------------------------------------------------------------------------------------------


def test_it_stores_records_and_gives_them_back_as_records(store: DuckDBStore) -> None:
    record = donation(1, church="church-9", amount=25.5, tags={"vip": True}, note=None)
    assert store.append([record]) == 1
    back = store.get_events([record["event_id"]])[record["event_id"]]
    expected = {k: v for k, v in record.items() if v is not None}
    assert back == expected


def test_it_counts_only_new_records_when_a_batch_is_retried(store: DuckDBStore) -> None:
    batch = [donation(i, church="church-1", amount=10.0) for i in range(50)]
    assert store.append(batch) == 50
    assert store.append(batch) == 0
    assert store.append([*batch[:10], donation(99, church="church-1", amount=1.0)]) == 1
    assert scalar(store, "SELECT count(*) FROM logs") == 51
    assert store.stats()["duplicates_skipped"] == 60


def test_it_stores_an_event_id_once_when_a_batch_repeats_it(store: DuckDBStore) -> None:
    first = donation(1, church="church-1", amount=10.0)
    assert store.append([first, dict(first), donation(2, church="church-1", amount=3.0)]) == 2
    assert scalar(store, "SELECT count(*) FROM logs") == 2


def test_it_skips_a_retried_batch_after_a_restart(store_path: Path) -> None:
    batch = donations_month(300)
    with DuckDBStore(store_path) as store:
        assert store.append(batch) == len(batch)
    with DuckDBStore(store_path) as store:
        assert store.append(batch) == 0
        assert store.append(batch[::-1]) == 0
        assert scalar(store, "SELECT count(*) FROM logs") == len(batch)


def test_it_finds_duplicates_spread_over_many_hours(store: DuckDBStore) -> None:
    batch = [log_line(i, at=NOV_1 + i * 3 * 3600) for i in range(40)]  # 40 hours, 5 days apart at the ends
    assert store.append(batch) == 40
    assert store.append(batch[::3]) == 0


def test_it_finds_duplicates_at_neighbouring_and_distant_moments_after_a_restart(store_path: Path) -> None:
    # Clusters of events a millisecond apart, clusters seconds apart, and a batch past the size at which
    # the look-up stops naming ids one by one.
    moments = [NOV_1 + cluster * 7.5 + i * 0.001 for cluster in range(6) for i in range(200)]
    batch = [log_line(i, at=at) for i, at in enumerate(moments)]
    with DuckDBStore(store_path) as store:
        assert store.append(batch) == len(batch)
    with DuckDBStore(store_path) as store:
        assert store.append(batch) == 0
        assert sum(store.append([record]) for record in batch[::97]) == 0
        assert store.append(batch[::150]) == 0  # one id from each cluster, named one by one
        assert store.append([*batch[5:9], log_line(5000, at=moments[6])]) == 1
        assert scalar(store, "SELECT count(*) FROM logs") == len(batch) + 1


def test_it_answers_every_caller_of_concurrent_appends(store: DuckDBStore) -> None:
    results: dict[int, int] = {}

    def send(worker: int) -> None:
        results[worker] = store.append([log_line(worker * 1000 + i) for i in range(100)])

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {worker: 100 for worker in range(8)}
    assert scalar(store, "SELECT count(*) FROM logs") == 800
    assert store.stats()["commits"] <= 8


def test_it_refuses_writes_once_closed(store_path: Path) -> None:
    store = DuckDBStore(store_path)
    store.close()
    store.close()
    with pytest.raises(StoreClosed):
        store.append([log_line(1)])


def test_it_fills_in_what_a_record_lacks(store_path: Path) -> None:
    with DuckDBStore(store_path, clock=Clock(NOV_1 + DAY)) as store:
        assert store.append([{"message": "bare"}, {"message": "no arrival", "event_id": "e1", "timestamp": "2025-11-01T00:00:00.000Z"}]) == 2
        bare, stamped = store.tail().records
    assert bare["message"] == "bare"
    assert len(bare["event_id"]) == 32
    assert bare["timestamp"] == bare["received_at"] == "2025-11-02T00:00:00.000Z"
    assert stamped["received_at"] == "2025-11-02T00:00:00.000Z"


def test_it_keeps_common_fields_that_do_not_fit_their_column(store: DuckDBStore) -> None:
    record = log_line(1, pid="web-1", duration_ms="slow", timestamp="not a time")
    store.append([record])
    back = store.get_events([record["event_id"]])[record["event_id"]]
    assert back["pid"] == "web-1"
    assert back["duration_ms"] == "slow"
    assert scalar(store, "SELECT pid FROM logs") is None


def test_it_stores_a_batch_mixing_plain_and_unusual_records(store: DuckDBStore) -> None:
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
    assert found[f"{10:032x}"] == {**plain, "amount": "2.0"}  # "a lot" widened amount to text
    assert found[f"{11:032x}"]["amount"] == "a lot"
    assert found[f"{12:032x}"]["pid"] == 2**40
    assert found[f"{13:032x}"]["timestamp"] == found[f"{13:032x}"]["received_at"]
    assert found[f"{14:032x}"]["brand_new"] == "x"
    assert store.append([plain, *odd]) == 0


def test_it_keeps_arrival_order_across_plain_and_unusual_records(store: DuckDBStore) -> None:
    store.append([log_line(i, step=i) for i in range(5)])  # promotes step
    store.append([log_line(i, step=i) for i in range(3)])  # stored already: numbers nothing
    mixed = [log_line(10, step=10), log_line(11, odd="x"), log_line(12, step=12), log_line(11), log_line(13, step="x")]
    page = store.tail(store.tail().cursor - 1)
    assert store.append(mixed) == 4
    assert [r["event_id"][-2:] for r in store.tail(page.cursor).records] == ["0a", "0b", "0c", "0d"]


def test_it_converts_timestamps_with_offsets_to_utc(store: DuckDBStore) -> None:
    store.append([log_line(1, timestamp="2025-11-01T02:00:00+02:00"), log_line(2, timestamp=NOV_1 + 60)])
    stamps = [r["timestamp"] for r in store.tail().records]
    assert stamps == ["2025-11-01T00:00:00.000Z", "2025-11-01T00:01:00.000Z"]


def test_it_keeps_integers_too_wide_for_a_column(store: DuckDBStore) -> None:
    store.append([log_line(1, big=2**70, nested={"big": 2**80})])
    (record,) = store.tail().records
    assert record["big"] == str(2**70)
    assert record["nested"] == {"big": str(2**80)}


@pytest.mark.slow
def test_it_loses_nothing_acknowledged_when_killed(store_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from events_cast import log_line
        from opswatch.server.store.duckdb import DuckDBStore
        store = DuckDBStore({str(store_path)!r})
        batch = 0
        while True:
            store.append([log_line(batch * 1000 + i) for i in range(500)])
            print(batch, flush=True)
            batch += 1
        """
    )
    acknowledged = acknowledged_before_kill(script, at_least=5)
    with DuckDBStore(store_path, read_only=True) as store:
        stored = {row[0] for row in rows(store, "SELECT event_id FROM logs")}
        total = scalar(store, "SELECT count(*) FROM logs")
    expected = {log_line(batch * 1000 + i)["event_id"] for batch in range(acknowledged + 1) for i in range(500)}
    assert expected <= stored
    assert total == len(stored)


# -- the key catalog ----------------------------------------------------------------------------------


def test_it_promotes_a_hot_key_to_a_typed_column_and_copies_its_earlier_values(store: DuckDBStore) -> None:
    store.append([log_line(1, score=1), log_line(2, score=2)])
    assert store.stats()["promoted_columns"] == 0
    assert scalar(store, "SELECT sum(score) FROM logs") == 3  # cold, read from the container
    store.append([log_line(3, score=3), log_line(4, score=4)])
    assert store.stats()["promoted_columns"] == 1
    assert rows(store, "SELECT score FROM logs ORDER BY score") == [(1,), (2,), (3,), (4,)]
    assert rows(store, "SELECT typeof(score) FROM logs LIMIT 1") == [("BIGINT",)]


def test_it_keeps_the_promotion_across_a_restart(store_path: Path) -> None:
    with DuckDBStore(store_path, promote_after=2) as store:
        store.append([log_line(1, score=1), log_line(2, score=2)])
    with DuckDBStore(store_path, promote_after=2) as store:
        assert store.stats()["promoted_columns"] == 1
        store.append([log_line(3, score=3)])
        assert scalar(store, "SELECT sum(score) FROM logs") == 6


def test_it_widens_a_column_when_a_key_changes_type(store: DuckDBStore) -> None:
    store.append([log_line(i, size=i) for i in range(4)])
    store.append([log_line(10, size=2.5)])
    assert rows(store, "SELECT typeof(size), sum(size) FROM logs GROUP BY 1") == [("DOUBLE", 8.5)]
    store.append([log_line(11, size="large")])
    assert rows(store, "SELECT typeof(size) FROM logs LIMIT 1") == [("VARCHAR",)]
    assert sorted(r[0] for r in rows(store, "SELECT size FROM logs")) == ["0.0", "1.0", "2.0", "2.5", "3.0", "large"]


def test_it_matches_keys_without_regard_to_case(store: DuckDBStore) -> None:
    store.append([log_line(i, churchId="c-1") for i in range(3)])
    store.append([log_line(10, churchid="c-2")])
    assert rows(store, "SELECT churchId FROM logs ORDER BY 1") == [("c-1",)] * 3 + [("c-2",)]


def test_it_keeps_cold_keys_queryable_when_no_column_is_left(store_path: Path) -> None:
    with DuckDBStore(store_path, promote_after=1, max_promoted_columns=1) as store:
        store.append([log_line(1, first="a", second=2, third={"x": [1]})])
        assert store.stats()["promoted_columns"] == 1
        assert rows(store, "SELECT first, second + 1, third->>'$.x[0]' FROM logs") == [("a", 3, "1")]


def test_it_keeps_keys_past_the_catalog_cap_in_the_container(store_path: Path) -> None:
    with DuckDBStore(store_path, max_catalog_keys=1) as store:
        store.append([log_line(1, kept="a", extra="b")])
        assert "extra" not in store.describe().columns
        assert rows(store, "SELECT attributes->>'extra' FROM logs") == [("b",)]
        assert store.tail().records[0]["extra"] == "b"


def test_it_answers_camel_case_names_for_snake_case_fields(store: DuckDBStore) -> None:
    store.append([donation(i, church=f"church-{i % 2}", amount=10.0 * i) for i in range(4)])
    assert rows(store, "SELECT churchId, SUM(amount) FROM logs GROUP BY churchId ORDER BY 1") == [
        ("church-0", 20.0),
        ("church-1", 40.0),
    ]
    schema = store.describe()
    assert schema.aliases["churchId"] == "church_id"
    assert schema.aliases["durationMs"] == "duration_ms"
    assert schema.tables == ("logs", "events", "spans")


def test_it_never_lets_an_attribute_shadow_a_common_field(store: DuckDBStore) -> None:
    store.append([log_line(1, Level="loud", attributes="x", seq=5) for _ in range(1)])
    assert rows(store, "SELECT level FROM logs") == [("info",)]
    back = store.tail().records[0]
    assert (back["Level"], back["attributes"], back["seq"]) == ("loud", "x", 5)


# -- reads --------------------------------------------------------------------------------------------


def test_it_tails_new_records_after_a_cursor(store: DuckDBStore) -> None:
    store.append([log_line(1, message="first"), log_line(2, message="second")])
    page = store.tail(limit=1)
    assert [r["message"] for r in page.records] == ["second"]
    assert store.tail(page.cursor).records == []
    store.append([log_line(3, message="third")])
    assert [r["message"] for r in store.tail(page.cursor).records] == ["third"]


def test_it_filters_the_tail_by_level_operation_and_text(store: DuckDBStore) -> None:
    store.append(
        [
            log_line(1, level="info", message="Card charged", operation="payment.charge"),
            log_line(2, level="error", message="Card declined", operation="payment.charge"),
            log_line(3, level="fatal", message="DB down", operation="db.connect"),
            log_line(4, level="error", message="card expired", operation="payment.refund"),
        ]
    )
    messages = lambda page: [r["message"] for r in page.records]  # noqa: E731
    assert messages(store.tail(level="error")) == ["Card declined", "DB down", "card expired"]
    assert messages(store.tail(operation="payment.*", text="CARD", level="warn")) == ["Card declined", "card expired"]
    assert messages(store.tail(operation="db.connect")) == ["DB down"]
    assert messages(store.tail(kind="error", project_id=2)) == []
    with pytest.raises(ValueError):
        store.tail(level="loud")


def test_it_stops_a_query_that_runs_too_long(store: DuckDBStore) -> None:
    store.append([log_line(i) for i in range(3000)])
    with pytest.raises(QueryTimeout, match=r"longer than 0\.2 s"):
        store.query("SELECT count(*) FROM logs a, logs b, logs c", max_rows=10, timeout=0.2)
    assert scalar(store, "SELECT count(*) FROM logs") == 3000  # the store still answers


def test_it_cuts_an_answer_at_the_row_cap(store: DuckDBStore) -> None:
    store.append([log_line(i) for i in range(30)])
    result = store.query("SELECT event_id FROM logs", max_rows=10, timeout=10)
    assert (len(result.rows), result.truncated) == (10, True)


def test_it_cannot_reach_files_even_with_unchecked_sql(store: DuckDBStore, tmp_path: Path) -> None:
    (tmp_path / "secret.csv").write_text("a\n1\n")
    with pytest.raises(QueryError, match="disabled"):
        store.query(f"SELECT * FROM read_csv('{tmp_path / 'secret.csv'}')", max_rows=10, timeout=10)
    with pytest.raises(QueryError):
        store.query("SET enable_external_access = true", max_rows=10, timeout=10)


# -- retention ----------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_it_deletes_events_older_than_the_retention(store_path: Path) -> None:
    clock = Clock(NOV_1 + 40 * DAY)
    with DuckDBStore(store_path, clock=clock) as store:
        store.append([log_line(i, at=NOV_1 + i * DAY) for i in range(20)])
        assert store.delete_older_than(30) == 10
        assert store.stats()["events"] == 10
        assert scalar(store, "SELECT min(timestamp)::VARCHAR FROM logs") == "2025-11-11 00:00:00"
        assert store.delete_older_than(30) == 0


def test_it_reuses_the_space_of_deleted_events(store_path: Path) -> None:
    clock = Clock(NOV_1)

    def a_day_of_events(day: int) -> list[dict[str, object]]:
        noise = random.Random(day)  # incompressible, so each day takes megabytes
        return [log_line(day * 100_000 + i, at=clock.now, note=noise.randbytes(500).hex()) for i in range(3000)]

    with DuckDBStore(store_path, clock=clock) as store:
        store.append(a_day_of_events(0))
        store.checkpoint()
        one_day = os.path.getsize(store_path)
        for day in range(1, 5):
            clock.now += 40 * DAY
            assert store.delete_older_than(30) == 3000
            store.append(a_day_of_events(day))
            store.checkpoint()
    assert os.path.getsize(store_path) <= one_day * 1.5  # five days were written; about one is kept


def test_it_never_hands_out_a_cursor_twice_after_retention_emptied_the_store(store_path: Path) -> None:
    clock = Clock(NOV_1)
    with DuckDBStore(store_path, clock=clock) as store:
        store.append([log_line(i) for i in range(5)])
        cursor = store.tail().cursor
        clock.now += 40 * DAY
        assert store.delete_older_than(30) == 5
    with DuckDBStore(store_path, clock=clock) as store:
        store.append([log_line(10, message="after the restart")])
        assert [r["message"] for r in store.tail(cursor).records] == ["after the restart"]


def test_it_runs_retention_on_a_schedule(store_path: Path) -> None:
    clock = Clock(NOV_1 + 100 * DAY)
    with DuckDBStore(store_path, clock=clock) as store:
        store.append([log_line(1), log_line(2, at=NOV_1 + 95 * DAY)])
        job = RetentionJob(store, 30, interval=0.05, first_delay=0.0)
        job.start()
        try:
            assert job.wait_for_runs(2, timeout=10)
        finally:
            job.stop()
        assert job.deleted == 1
        assert scalar(store, "SELECT count(*) FROM logs") == 1


def test_it_logs_and_keeps_going_when_retention_fails(store_path: Path) -> None:
    store = DuckDBStore(store_path)
    store.close()
    job = RetentionJob(store, 30)
    assert job.run_once() == 0
    assert job.last_error is not None and "closed" in job.last_error


# -- the file -----------------------------------------------------------------------------------------


def test_it_records_the_schema_version(store_path: Path) -> None:
    DuckDBStore(store_path).close()
    with duckdb.connect(str(store_path), read_only=True) as conn:
        assert conn.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone() == ("3",)


def test_it_refuses_a_file_from_a_newer_opswatch(store_path: Path) -> None:
    DuckDBStore(store_path).close()
    with duckdb.connect(str(store_path)) as conn:
        conn.execute("UPDATE store_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99"):
        DuckDBStore(store_path)


def test_it_reads_a_stopped_servers_file_read_only(store_path: Path) -> None:
    with DuckDBStore(store_path) as store:
        store.append([donation(1, church="church-1", amount=5.0)])
    with DuckDBStore(store_path, read_only=True) as store:
        assert scalar(store, "SELECT churchId FROM logs") == "church-1"
        with pytest.raises(StoreClosed):
            store.append([log_line(2)])


def test_it_says_when_there_is_no_store_to_read(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no event store"):
        DuckDBStore(tmp_path / "missing.duckdb", read_only=True)


@pytest.mark.parametrize(
    ("option", "value"),
    [("promote_after", 0), ("max_rows_per_commit", -1), ("threads", "2"), ("idle_checkpoint_seconds", 0)],
)
def test_it_names_a_bad_option(store_path: Path, option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        DuckDBStore(store_path, **{option: value})  # type: ignore[arg-type]


def test_it_reports_its_figures(store: DuckDBStore) -> None:
    store.append([donation(i, church="church-1", amount=1.0) for i in range(5)])
    stats = store.stats()
    assert stats["events"] == 5
    assert stats["rows_written"] == 5
    assert stats["file_bytes"] > 0
    assert stats["queue_depth"] == 0
    assert stats["attribute_keys"] >= 7
    assert orjson.loads(orjson.dumps(stats)) == stats
