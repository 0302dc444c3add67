"""SQL within bounds: memory, spill, time, answer size, and values built from constants.

The memory test runs a real ``opswatch serve`` with small ``OPSWATCH_QUERY_MEMORY_LIMIT`` and
``OPSWATCH_QUERY_TEMP_LIMIT`` and reads the server process's peak memory from ``/proc``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest_helpers import donation, http, ndjson, post_native
from opswatch.server import limits
from opswatch.server.store.base import QueryBusy, QueryTimeout
from opswatch.server.store.duckdb import DuckDBStore
from opswatch.server.testing import RunningServer, running_server
from served import served


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("query-limits"), retention_days=36500) as running:
        assert post_native(running, [donation() for _ in range(40)]).status_code == 200
        yield running


def query(server: RunningServer, sql: str, **fields: object) -> tuple[int, dict[str, object]]:
    answer = http().post(
        f"{server.url}/api/0/query",
        json={"sql": sql, **fields},
        headers={"Authorization": f"Bearer {server.admin_token}"},
    )
    return answer.status_code, answer.json()


# -- values built from constants -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM unnest(range(200000000))",
        "SELECT count(*) FROM unnest(generate_series(1, 5000000000, 2))",
        "SELECT length(repeat('ab', 100000000))",
        "SELECT length(repeat(repeat('x', 1000), 2000))",
        "SELECT length(lpad('x', 1000000000, 'y'))",
        "SELECT len(list_resize([1], 100000000))",
        "SELECT printf('%1000000000d', 1)",
    ],
)
def test_it_refuses_a_query_that_builds_a_huge_value_from_constants(server: RunningServer, sql: str) -> None:
    status, answer = query(server, sql)
    assert status == 400, answer
    assert "QUERY_MAX_GENERATED" in str(answer["detail"])


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM unnest(range((SELECT 5)))",
        "SELECT count(*) FROM (SELECT unnest(range(amount::BIGINT)) FROM logs)",
        "SELECT length(repeat('x', amount::BIGINT)) FROM logs",
    ],
)
def test_it_refuses_sizes_that_are_not_constants(server: RunningServer, sql: str) -> None:
    status, answer = query(server, sql)
    assert status == 400, answer


def test_it_runs_small_generated_values(server: RunningServer) -> None:
    status, answer = query(
        server, "SELECT count(*), max(length(repeat(message, 3))) FROM logs, unnest(range(1000)) t(i)"
    )
    assert status == 200, answer
    assert answer["rows"] == [[40_000, 3 * len("Donation completed")]]


# -- answer size --------------------------------------------------------------------------------------


def test_it_cuts_an_answer_at_the_size_cap_and_says_so(server: RunningServer) -> None:
    assert limits.QUERY_MAX_ANSWER_BYTES == 32 * 1024 * 1024
    status, answer = query(server, "SELECT repeat('x', 1000000) AS big FROM logs")
    assert status == 200, answer
    assert answer["truncated"] is True
    assert answer["row_count"] == len(answer["rows"]) == 33  # 33 MB of 40 fit under 32 MiB
    assert "answer-size cap of 32 MiB" in str(answer["notice"])


def test_it_still_cuts_by_rows_under_the_size_cap(server: RunningServer) -> None:
    status, answer = query(server, "SELECT event_id FROM logs", max_rows=10)
    assert status == 200
    assert answer["truncated"] is True and answer["row_count"] == 10
    assert "row cap" in str(answer["notice"])


def test_the_store_cuts_by_bytes_at_the_edge(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "events.duckdb") as store:
        sql = "SELECT repeat('x', 96) FROM range(10)"  # a row counts 100 bytes: 96, quotes, brackets
        exact = store.query(sql, max_rows=100, timeout=10, max_bytes=1000)
        assert (len(exact.rows), exact.truncated) == (10, False)
        over = store.query(sql, max_rows=100, timeout=10, max_bytes=999)
        assert (len(over.rows), over.truncated, over.cut_by) == (9, True, "bytes")


# -- time ---------------------------------------------------------------------------------------------


def test_it_answers_by_the_deadline_when_duckdb_does_not_stop(tmp_path: Path) -> None:
    # DuckDB builds a constant string in one piece and does not look at the interrupt meanwhile (the
    # store does not check SQL; ``run_query`` would refuse this one).
    slow = "SELECT length(repeat('ab', 20000000))"
    with DuckDBStore(tmp_path / "events.duckdb", query_grace_seconds=0.0) as store:
        for _ in range(limits.QUERY_MAX_ABANDONED):
            with pytest.raises(QueryTimeout, match=r"ran longer than 0\.001 s"):
                store.query(slow, max_rows=1, timeout=0.001)
        with pytest.raises(QueryBusy, match="still being stopped"):
            store.query("SELECT 1", max_rows=1, timeout=10)
        deadline = time.monotonic() + 60
        while True:  # once they have ended, queries run again
            try:
                assert store.query("SELECT 1", max_rows=1, timeout=10).rows == [(1,)]
                break
            except QueryBusy:
                assert time.monotonic() < deadline
                time.sleep(0.05)


def test_it_answers_408_when_the_interrupt_stops_a_query(server: RunningServer) -> None:
    every = "SELECT sum(length(a.event_id || b.event_id || c.event_id || d.event_id || e.event_id))"
    status, answer = query(server, f"{every} FROM logs a, logs b, logs c, logs d, logs e", timeout=0.2)
    assert status == 408, answer
    assert "ran longer than 0.2 s" in str(answer["detail"])


# -- memory -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_it_refuses_a_query_past_the_memory_and_spill_limits_without_growing(tmp_path: Path) -> None:
    with served(tmp_path, OPSWATCH_QUERY_MEMORY_LIMIT="64MB", OPSWATCH_QUERY_TEMP_LIMIT="16MB") as server:
        headers = {"Authorization": f"Bearer {server.key}"}
        for _ in range(3):
            body = ndjson([donation() for _ in range(1000)])
            answer = http().post(
                f"{server.url}/api/{server.project_id}/events/", content=body, headers=headers
            )
            assert answer.status_code == 200, answer.text
        admin = {"Authorization": f"Bearer {server.admin_token}"}
        before = server.peak_rss_mib()
        # 9 M distinct 64-character strings: about a gigabyte of hash table.
        answer = http().post(
            f"{server.url}/api/0/query",
            json={"sql": "SELECT count(DISTINCT a.event_id || b.event_id) FROM logs a, logs b"},
            headers=admin,
        )
        assert answer.status_code == 400, answer.text
        detail = answer.json()["detail"]
        assert "needs more memory than the server allows" in detail
        assert "memory_limit 64MB" in detail and "max_temp_directory_size 16MB" in detail
        assert server.peak_rss_mib() - before < 200
        small = http().post(
            f"{server.url}/api/0/query", json={"sql": "SELECT count(*) FROM logs"}, headers=admin
        )
        assert small.json()["rows"] == [[3000]]
