"""``POST /api/0/query``: admin-only read-only SQL, JSON answers, clear refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from events_cast import donation, log_line
from opswatch.server.testing import RunningServer, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    path: Path = tmp_path_factory.mktemp("api-query")
    with running_server(path, retention_days=36500) as running:  # the cast lives in November 2025
        running.ctx.store.append(
            [donation(i, church=f"church-{i % 3}", amount=10.0 * i) for i in range(30)]
            + [log_line(1000 + i) for i in range(3000)]
        )
        yield running


def ask(server: RunningServer, body: object, *, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/0/query", json=body, headers=server.admin_headers if headers is None else headers,
        timeout=30,
    )


def test_it_answers_the_seeds_query_as_json(server: RunningServer) -> None:
    response = ask(server, {"sql": "SELECT churchId, SUM(amount) AS total FROM logs "
                                   "WHERE operation = 'metrics.donation.completed' GROUP BY churchId ORDER BY 1"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["columns"] == ["churchId", "total"]
    assert answer["rows"] == [["church-0", 1350.0], ["church-1", 1450.0], ["church-2", 1550.0]]
    assert (answer["row_count"], answer["truncated"]) == (3, False)
    assert "notice" not in answer


def test_it_wants_the_admin_token(server: RunningServer) -> None:
    assert ask(server, {"sql": "SELECT 1"}, headers={}).status_code == 401
    assert ask(server, {"sql": "SELECT 1"}, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_it_refuses_sql_that_is_not_a_select(server: RunningServer) -> None:
    response = ask(server, {"sql": "ATTACH '/tmp/x.db' AS x"})
    assert response.status_code == 400
    assert "only SELECT queries are allowed" in response.json()["detail"]


def test_it_answers_408_when_the_time_limit_stops_a_query(server: RunningServer) -> None:
    response = ask(server, {"sql": "SELECT count(*) FROM logs a, logs b, logs c", "timeout": 0.2})
    assert response.status_code == 408
    assert "longer than 0.2 s" in response.json()["detail"]


def test_it_says_when_the_row_cap_cut_the_answer(server: RunningServer) -> None:
    answer = ask(server, {"sql": "SELECT event_id, timestamp FROM events", "max_rows": 5}).json()
    assert (answer["row_count"], answer["truncated"]) == (5, True)
    assert "cut at 5 rows" in answer["notice"]
    assert answer["rows"][0][1].endswith("Z")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([1], "JSON object"),
        ({}, "sql:"),
        ({"sql": "SELECT 1", "max_rows": 0}, "max_rows"),
        ({"sql": "SELECT 1", "timeout": "long"}, "timeout"),
        ({"sql": "SELECT 1", "database": "x"}, "unknown field 'database'"),
    ],
)
def test_it_names_what_is_wrong_with_a_request(server: RunningServer, body: object, reason: str) -> None:
    response = ask(server, body)
    assert response.status_code == 400
    assert reason in response.json()["detail"]


def test_it_refuses_a_body_that_is_not_json(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/api/0/query", content=b"SELECT 1", headers=server.admin_headers)
    assert response.status_code == 400
