"""``GET /api/0/events`` and ``opswatch tail``: the latest events, filtered, and following new ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest_helpers import donation, http, post_native
from opswatch.cli import main
from opswatch.server.testing import RunningServer, running_server


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        monkeypatch.setenv("OPSWATCH_URL", running.url)
        monkeypatch.setenv("OPSWATCH_ADMIN_TOKEN", running.admin_token)
        post_native(
            running,
            [
                donation(message="Donation completed"),
                donation(
                    message="Card declined for order 7", level="error", operation="payment.stripe.charge"
                ),
                donation(message="Refund issued", level="warn", operation="payment.stripe.refund"),
                donation(message="Cache warmed", level="debug", operation="cache.warm"),
            ],
        )
        yield running


def events(server: RunningServer, **params: object) -> dict[str, object]:
    answer = http().get(f"{server.url}/api/0/events", params=params, headers=server.admin_headers)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def messages(page: dict[str, object]) -> list[str]:
    return [e["message"] for e in page["events"]]  # type: ignore[attr-defined, index]


def test_it_lists_the_latest_events_oldest_first(server: RunningServer) -> None:
    page = events(server)
    assert messages(page) == [
        "Donation completed",
        "Card declined for order 7",
        "Refund issued",
        "Cache warmed",
    ]
    assert messages(events(server, limit=2)) == ["Refund issued", "Cache warmed"]


def test_it_filters_by_level_operation_and_text(server: RunningServer) -> None:
    assert messages(events(server, level="warn")) == ["Card declined for order 7", "Refund issued"]
    assert messages(events(server, operation="payment.*")) == ["Card declined for order 7", "Refund issued"]
    assert messages(events(server, operation="cache.warm")) == ["Cache warmed"]
    assert messages(events(server, text="CARD")) == ["Card declined for order 7"]
    assert messages(events(server, kind="error")) == ["Card declined for order 7"]


def test_it_returns_only_newer_events_after_a_cursor(server: RunningServer) -> None:
    cursor = events(server)["cursor"]
    assert messages(events(server, after=cursor)) == []
    post_native(server, [donation(message="Newer one")])
    page = events(server, after=cursor)
    assert messages(page) == ["Newer one"]
    assert messages(events(server, after=page["cursor"])) == []


def test_it_refuses_bad_filters_and_requests_without_the_token(server: RunningServer) -> None:
    for params in ({"level": "loud"}, {"kind": "nope"}, {"limit": 0}, {"limit": 5000}, {"after": -1}):
        answer = http().get(f"{server.url}/api/0/events", params=params, headers=server.admin_headers)
        assert answer.status_code in (400, 422), params
    assert http().get(f"{server.url}/api/0/events").status_code == 401


def test_it_prints_the_tail_for_people_and_for_programs(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tail", "--level", "error"]) == 0
    out = capsys.readouterr().out
    assert "ERROR" in out and "Card declined for order 7" in out
    assert "Donation completed" not in out
    assert main(["tail", "-n", "2", "--format", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["message"] for line in lines] == ["Refund issued", "Cache warmed"]
    assert main(["tail", "--level", "shouting"]) == 2
    assert "unknown level" in capsys.readouterr().err


@pytest.mark.slow
def test_it_follows_new_events(server: RunningServer) -> None:
    command = [
        sys.executable,
        "-m",
        "opswatch",
        "tail",
        "-f",
        "--interval",
        "0.1",
        "-n",
        "1",
        "--format",
        "json",
        "--operation",
        "payment.*",
    ]
    env = {**os.environ, "OPSWATCH_URL": server.url, "OPSWATCH_ADMIN_TOKEN": server.admin_token}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as follower:
        try:
            assert follower.stdout is not None
            first = json.loads(follower.stdout.readline())
            assert first["message"] == "Refund issued"
            time.sleep(0.3)
            post_native(
                server,
                [
                    donation(message="Not a payment", operation="cache.warm"),
                    donation(message="Charge retried", operation="payment.stripe.charge"),
                ],
            )
            followed = json.loads(follower.stdout.readline())
            assert followed["message"] == "Charge retried"
        finally:
            follower.terminate()
            follower.wait(10)
