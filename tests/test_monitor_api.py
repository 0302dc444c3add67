"""``/api/0/monitors`` against a real server: create, read, change, pause, delete; check-ins from pings and
from the real ``sentry-sdk``; state changes in the event store; and a run of an ``every 2 seconds``
heartbeat that goes missed and recovers, announced to a Slack stand-in. Each runs on a SQLite state store
and on PostgreSQL (``state_url``; one server, so leader election is off and the cron clock runs here).

The server runs with a manual clock (``ManualClock``), so nothing waits for minutes to pass; the cron
clock thread ticks every real second at the manual time. Nothing sleeps for synchronization: a test
waits for the condition it needs (``wait_until``, ``ticked``) under a deadline, and fails at it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sentry_sdk
from sentry_sdk.crons import capture_checkin

import opswatch
from opswatch.server.testing import RunningServer, running_server
from slack_receiver import SlackReceiver


class ManualClock:
    """A server clock that moves only when told to."""

    def __init__(self, start: str) -> None:
        self._now = datetime.fromisoformat(start).replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock("2025-06-02T01:59:00")


@pytest.fixture
def server(tmp_path: Path, clock: ManualClock, state_url: str) -> Iterator[RunningServer]:
    with running_server(tmp_path, now=clock.now, database_url=state_url, leader_election="off") as running:
        yield running


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.admin_headers, timeout=10) as client:
        yield client


def wait_until(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    """``condition()`` once it is true; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {getattr(condition, '__name__', condition)}"
        time.sleep(0.02)


def ticked(server: RunningServer) -> None:
    """Wait until the cron clock ran a whole tick (and its outbox round) that started after this call."""
    cron_clock = next(item for item in server.ctx.background if type(item).__name__ == "CronClock")
    start = cron_clock.ticks
    wait_until(lambda: cron_clock.ticks >= start + 2)


def announced(server: RunningServer) -> None:
    """Wait until every monitor notification is claimed and the notifier has sent what it was given."""
    ticked(server)
    notifier = server.ctx.notifier
    assert notifier is not None and notifier.flush(30)


NIGHTLY = {
    "slug": "nightly-report",
    "config": {"schedule": "0 2 * * *", "checkin_margin": 5, "max_runtime": 10},
}


def test_it_refuses_the_monitor_api_without_the_admin_token(server: RunningServer) -> None:
    answer = httpx.get(f"{server.url}/api/0/monitors")
    assert answer.status_code == 401
    answer = httpx.post(
        f"{server.url}/api/0/monitors", json=NIGHTLY, headers={"Authorization": "Bearer wrong"}
    )
    assert answer.status_code == 401


def test_it_creates_shows_lists_and_deletes_a_monitor(api: httpx.Client) -> None:
    created = api.post("/api/0/monitors", json=NIGHTLY)
    assert created.status_code == 201, created.text
    monitor = created.json()
    assert monitor["slug"] == "nightly-report" and monitor["status"] == "new"
    assert monitor["settings"]["checkin_margin_seconds"] == 300
    assert monitor["settings"]["max_runtime_seconds"] == 600
    assert monitor["settings"]["failure_threshold"] == 1
    assert monitor["next_expected_at"] is None  # never checked in, so never missed

    listed = api.get("/api/0/monitors").json()
    assert [item["slug"] for item in listed["items"]] == ["nightly-report"]
    assert listed["total"] == 1

    shown = api.get("/api/0/monitors/nightly-report").json()
    assert shown["config"] == {
        "schedule": "0 2 * * *",
        "checkin_margin_seconds": 300.0,
        "max_runtime_seconds": 600.0,
    }
    assert [change["change"] for change in shown["changes"]] == ["created"]

    assert api.delete("/api/0/monitors/nightly-report").status_code == 204
    assert api.get("/api/0/monitors/nightly-report").status_code == 404
    assert api.get("/api/0/monitors").json()["total"] == 0


def test_it_rejects_a_schedule_cron_cannot_run_naming_the_setting(api: httpx.Client) -> None:
    for schedule, words in [
        ("0 2 * * * *", "6 fields"),
        ("* * 31 2 *", "never fires"),
        ("0 0 15W * *", "weekday"),
    ]:
        answer = api.post("/api/0/monitors", json={"slug": "bad", "config": {"schedule": schedule}})
        assert answer.status_code == 400
        assert answer.json()["detail"].startswith("schedule:") and words in answer.json()["detail"]
    answer = api.post(
        "/api/0/monitors", json={"slug": "bad", "config": {"schedule": "@daily", "timezone": "Mars/X"}}
    )
    assert answer.status_code == 400 and answer.json()["detail"].startswith("timezone:")
    answer = api.post("/api/0/monitors", json={"slug": "no spaces", "config": {"schedule": "@daily"}})
    assert answer.status_code == 400 and answer.json()["detail"].startswith("slug:")
    assert api.get("/api/0/monitors").json()["total"] == 0


def test_it_answers_409_for_a_slug_that_exists(api: httpx.Client) -> None:
    assert api.post("/api/0/monitors", json=NIGHTLY).status_code == 201
    answer = api.post("/api/0/monitors", json=NIGHTLY)
    assert answer.status_code == 409 and "exists" in answer.json()["detail"]


def test_it_changes_only_the_settings_sent(api: httpx.Client) -> None:
    api.post("/api/0/monitors", json=NIGHTLY)
    changed = api.patch(
        "/api/0/monitors/nightly-report", json={"failure_threshold": 3, "timezone": "Europe/Berlin"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["config"] == {
        "schedule": "0 2 * * *",
        "checkin_margin_seconds": 300.0,
        "max_runtime_seconds": 600.0,
        "failure_threshold": 3,
        "timezone": "Europe/Berlin",
    }
    refused = api.patch("/api/0/monitors/nightly-report", json={"recovery_threshold": 0})
    assert refused.status_code == 400 and refused.json()["detail"].startswith("recovery_threshold:")
    assert api.patch("/api/0/monitors/unknown", json={"failure_threshold": 2}).status_code == 404


def test_it_pauses_and_resumes_a_monitor(
    api: httpx.Client, server: RunningServer, clock: ManualClock
) -> None:
    api.post("/api/0/monitors", json={"slug": "hourly", "config": {"schedule": "@hourly"}})
    httpx.get(f"{server.url}/ping/{server.key}/hourly")
    paused = api.post("/api/0/monitors/hourly/pause").json()
    assert paused["status"] == "paused" and paused["paused"] is True
    clock.advance(3 * 3600)
    ticked(server)  # the cron clock looked at the new time: a paused monitor is never missed
    assert api.get("/api/0/monitors/hourly").json()["status"] == "paused"
    resumed = api.post("/api/0/monitors/hourly/resume").json()
    assert resumed["status"] == "ok"
    assert resumed["next_expected_at"] == "2025-06-02T05:00:00.000Z"
    changes = [change["change"] for change in api.get("/api/0/monitors/hourly").json()["changes"]]
    assert changes[:2] == ["resumed", "paused"] and "missed" not in changes


def test_it_records_pinged_runs_with_their_durations_and_health(
    api: httpx.Client, server: RunningServer, clock: ManualClock
) -> None:
    api.post("/api/0/monitors", json={"slug": "backup", "config": {"schedule": "0 2 * * *"}})
    ping = f"{server.url}/ping/{server.key}/backup"
    assert httpx.get(f"{ping}/start", params={"rid": "run-1"}).text == "OK"
    clock.advance(2.5)
    httpx.get(ping, params={"rid": "run-1"})
    clock.advance(60)
    httpx.post(f"{ping}/1", content=b"tar: disk full")  # exit code 1: a failed run
    monitor = api.get("/api/0/monitors/backup").json()
    assert monitor["status"] == "failing" and monitor["failing_reason"] == "error"
    assert monitor["success_rate"] == 0.5
    assert monitor["avg_duration_ms"] == 2500.0  # the failed run had no start, so no duration
    runs = api.get("/api/0/monitors/backup/runs").json()["items"]
    assert [(run["status"], run["run_id"]) for run in runs] == [("error", None), ("ok", "run-1")]
    assert runs[1]["duration_ms"] == 2500.0
    duplicate = httpx.get(ping, params={"rid": "run-1"})
    assert duplicate.status_code == 200
    assert len(api.get("/api/0/monitors/backup/runs").json()["items"]) == 2


def test_it_lists_check_ins_refused_for_an_unknown_monitor(api: httpx.Client, server: RunningServer) -> None:
    # Pings for an unknown monitor are refused at the door (404, see test_pings); check-ins in Sentry
    # envelopes are not checked there, so they are stored, refused by the monitor service and listed here.
    sentry_sdk.init(
        dsn=server.dsn, default_integrations=False, auto_session_tracking=False, send_client_reports=False
    )
    try:
        capture_checkin(monitor_slug="never-created", status="in_progress")
        capture_checkin(monitor_slug="never-created", status="ok")
        sentry_sdk.flush(30)
    finally:
        sentry_sdk.get_client().close(timeout=2)
    listed = wait_until(
        lambda: (m := api.get("/api/0/monitors").json())["rejected"] and m["rejected"][0]["count"] == 2 and m
    )
    assert listed, api.get("/api/0/monitors").json()
    assert listed["items"] == []
    [refused] = listed["rejected"]
    assert refused["slug"] == "never-created" and refused["count"] == 2
    assert "no monitor 'never-created'" in refused["reason"]


def test_it_creates_a_monitor_from_a_sentry_sdk_check_in_with_monitor_config(
    api: httpx.Client, server: RunningServer
) -> None:
    sentry_sdk.init(
        dsn=server.dsn, default_integrations=False, auto_session_tracking=False, send_client_reports=False
    )
    try:
        config = {
            "schedule": {"type": "crontab", "value": "0 2 * * *"},
            "timezone": "America/New_York",
            "checkin_margin": 5,
            "max_runtime": 15,
            "failure_issue_threshold": 2,
        }
        run = capture_checkin(
            monitor_slug="check-expired-subscriptions", status="in_progress", monitor_config=config
        )
        capture_checkin(
            monitor_slug="check-expired-subscriptions", check_in_id=run, status="ok", duration=1.5
        )
        sentry_sdk.flush(30)
    finally:
        sentry_sdk.get_client().close(timeout=2)
    monitor = wait_until(
        lambda: (
            (m := api.get("/api/0/monitors/check-expired-subscriptions")).status_code == 200
            and m.json()["runs"]
            and m.json()["runs"][0]["status"] == "ok"
            and m.json()
        )
    )
    assert monitor["settings"]["timezone"] == "America/New_York"
    assert monitor["settings"]["failure_threshold"] == 2
    assert monitor["settings"]["max_runtime_seconds"] == 900
    assert monitor["runs"][0]["duration_ms"] == 1500.0
    assert monitor["status"] == "ok"


def test_it_creates_a_monitor_from_the_sdks_cron_job_wrapper(
    api: httpx.Client, server: RunningServer
) -> None:
    opswatch.init(dsn=server.dsn, console=False, capture_stdlib=False)
    result = opswatch.execute_cron_job(
        "cleanup-pending-donations", lambda: 42, schedule="0 3 * * 0", max_runtime_minutes=10
    )
    assert result == 42
    assert opswatch.flush(10)
    monitor = api.get("/api/0/monitors/cleanup-pending-donations").json()
    assert monitor["settings"]["schedule"] == "0 3 * * 0"
    assert monitor["settings"]["max_runtime_seconds"] == 600
    assert monitor["status"] == "ok"
    [run] = monitor["runs"]
    assert run["status"] == "ok" and run["run_id"] is not None and run["duration_ms"] is not None


def test_it_keeps_state_changes_in_the_event_store(
    api: httpx.Client, server: RunningServer, clock: ManualClock
) -> None:
    api.post("/api/0/monitors", json={"slug": "minutely", "config": {"schedule": "* * * * *"}})
    httpx.get(f"{server.url}/ping/{server.key}/minutely")  # 01:59:00, the 01:59 slot
    clock.advance(121)  # 02:01:01: the 02:00 slot plus its one-minute margin has passed

    def state_changes() -> list[dict[str, Any]]:
        return server.ctx.store.tail(kind="state_change").records  # type: ignore[attr-defined, no-any-return]

    records = wait_until(lambda: len(state_changes()) >= 3 and state_changes())
    by_change = {record["change"]: record for record in records}
    assert set(by_change) >= {"created", "missed", "failing"}
    assert by_change["missed"]["monitor_slug"] == "minutely"
    assert by_change["missed"]["timestamp"].startswith("2025-06-02T02:00:00")
    assert by_change["failing"]["reason"] == "missed"
    assert api.get("/api/0/monitors/minutely").json()["status"] == "failing"


def test_it_goes_missed_and_recovers_and_tells_slack_once_each(
    tmp_path: Path, clock: ManualClock, state_url: str
) -> None:
    with (
        SlackReceiver() as slack,
        running_server(
            tmp_path, slack_webhook_url=slack.url, now=clock.now, database_url=state_url, leader_election="off"
        ) as server,
        httpx.Client(base_url=server.url, headers=server.admin_headers, timeout=10) as api,
    ):
        config = {"schedule": "every 2 seconds", "checkin_margin_seconds": 2}
        assert api.post("/api/0/monitors", json={"slug": "heartbeat", "config": config}).status_code == 201
        ping = f"{server.url}/ping/{server.key}/heartbeat"
        for _ in range(3):
            assert httpx.get(ping).status_code == 200
            clock.advance(1.0)
        assert api.get("/api/0/monitors/heartbeat").json()["status"] == "ok"
        # silence: the next beat was due 2 s after the last, plus 2 s of margin
        clock.advance(4.0)
        wait_until(lambda: api.get("/api/0/monitors/heartbeat").json()["status"] == "failing")
        announced(server)
        assert len(slack.messages) == 1 and "Cron Job Failure" in slack.texts()[0]
        assert "heartbeat" in slack.texts()[0]
        clock.advance(4.0)  # more missed beats: still one episode, no more messages

        def missed_runs() -> int:
            runs = api.get("/api/0/monitors/heartbeat").json()["runs"]
            return sum(run["status"] == "missed" for run in runs)

        wait_until(lambda: missed_runs() >= 2)
        announced(server)
        assert len(slack.messages) == 1
        for _ in range(2):
            httpx.get(ping)
            clock.advance(0.5)
        assert api.get("/api/0/monitors/heartbeat").json()["status"] == "ok"
        announced(server)
        assert len(slack.messages) == 2
        assert "Cron Job Recovered" in slack.texts()[1]
        monitor = api.get("/api/0/monitors/heartbeat").json()
        assert [change["change"] for change in monitor["changes"]].count("failing") == 1
