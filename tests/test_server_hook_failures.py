"""A failing ingest hook is never silent: counted in /metrics by hook, and /healthz says degraded.

The events themselves are durable and the client gets 200 (the hooks run after the commit); what the
operator must see is that issue grouping or check-ins could not process some of them. The state store
is broken for real here: the table each hook writes is dropped under the running server.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from ingest_helpers import create_monitor, donation, http, post_native
from opswatch.server import limits
from opswatch.server.testing import RunningServer, running_server

START = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(tmp_path: Path, clock: Clock) -> Iterator[RunningServer]:
    with running_server(tmp_path, now=clock, retention_days=36500) as running:
        yield running


def metric(server: RunningServer, name: str, hook: str) -> float:
    for line in http().get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(f'{name}{{hook="{hook}"}} '):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def health(server: RunningServer) -> dict[str, object]:
    answer = http().get(f"{server.url}/healthz")
    assert answer.status_code == 200
    body: dict[str, object] = answer.json()
    return body


def drop(server: RunningServer, table: str) -> None:
    with server.ctx.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {table}"))


def test_it_is_ok_while_every_hook_works(server: RunningServer) -> None:
    assert post_native(server, [donation(level="error", message="boom")]).status_code == 200
    assert health(server)["status"] == "ok"
    assert metric(server, "opswatch_hook_failures_total", "IssueHook") == 0


def test_it_counts_a_failing_issue_hook_and_its_records_and_says_degraded(server: RunningServer) -> None:
    drop(server, "issue_events")
    errors = [donation(level="error", message=f"boom {i}") for i in range(3)]
    assert post_native(server, errors).status_code == 200  # stored: the hooks run after the commit
    assert metric(server, "opswatch_hook_failures_total", "IssueHook") == 1
    assert metric(server, "opswatch_hook_records_failed_total", "IssueHook") == 3
    body = health(server)
    assert body["status"] == "degraded"
    assert body["hook_failures"] == 1 and body["hook_records_failed"] == 3


def test_it_counts_check_ins_the_monitors_could_not_apply(server: RunningServer) -> None:
    create_monitor(server, "nightly-backup")
    drop(server, "monitor_runs")
    assert http().get(f"{server.url}/ping/{server.key}/nightly-backup").status_code == 200
    assert metric(server, "opswatch_hook_records_failed_total", "MonitorService.hook") == 1
    assert health(server)["status"] == "degraded"


def test_it_is_ok_again_once_the_degraded_window_passed(server: RunningServer, clock: Clock) -> None:
    drop(server, "issue_events")
    post_native(server, [donation(level="error", message="boom")])
    clock.now = START + datetime.timedelta(seconds=limits.HOOK_DEGRADED_SECONDS)
    assert health(server)["status"] == "degraded"
    clock.now = START + datetime.timedelta(seconds=limits.HOOK_DEGRADED_SECONDS + 1)
    assert health(server)["status"] == "ok"
    assert metric(server, "opswatch_hook_failures_total", "IssueHook") == 1  # the count stays
