"""A monitor run's times agree with its duration: ``finished_at - started_at == duration``.

The client measures a run; the server only sees when the check-ins arrive, which batching and the
network move by tens of milliseconds. When the client sent a duration, the run starts at the result's
arrival less that duration.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

import opswatch
from opswatch.server.monitors import config as monitor_config
from opswatch.server.monitors import engine
from opswatch.server.monitors.engine import CheckIn, MonitorState
from opswatch.server.testing import running_server

T0 = 1_750_000_000.0


def hourly() -> engine.Rules:
    return monitor_config.rules_for(monitor_config.normalize({"schedule": "0 * * * *", "max_runtime": 5}))


def test_it_dates_the_start_from_the_end_and_the_clients_duration() -> None:
    rules, state = hourly(), MonitorState()
    engine.checkin(rules, state, CheckIn("in_progress", "r1"), T0)
    out = engine.checkin(rules, state, CheckIn("ok", "r1", duration=0.2), T0 + 0.055)
    [run] = out.runs
    assert run.finished_at == T0 + 0.055
    assert run.duration == 0.2
    assert run.started_at == pytest.approx(T0 + 0.055 - 0.2, abs=1e-6)


def test_it_keeps_the_arrival_times_when_the_client_sent_no_duration() -> None:
    rules, state = hourly(), MonitorState()
    engine.checkin(rules, state, CheckIn("in_progress", "r1"), T0)
    [run] = engine.checkin(rules, state, CheckIn("error", "r1"), T0 + 12.5).runs
    assert (run.started_at, run.finished_at, run.duration) == (T0, T0 + 12.5, 12.5)


def test_it_dates_a_late_result_for_a_timed_out_run_by_its_duration() -> None:
    rules, state = hourly(), MonitorState()
    engine.checkin(rules, state, CheckIn("in_progress", "r1"), T0)
    engine.tick(rules, state, T0 + 301)  # five minutes of max runtime: timed out
    [run] = engine.checkin(rules, state, CheckIn("ok", "r1", duration=400.0), T0 + 420).runs
    assert run.status == "timeout"
    assert run.finished_at - run.started_at == pytest.approx(400.0, abs=1e-6)
    assert run.duration == 400.0


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.slow
def test_it_stores_runs_from_the_sdk_whose_times_match_their_duration(tmp_path: Path) -> None:
    with (
        running_server(tmp_path) as server,
        httpx.Client(base_url=server.url, headers=server.admin_headers, timeout=10, trust_env=False) as api,
    ):
        opswatch.init(dsn=server.dsn, console=False, capture_stdlib=False)
        opswatch.execute_cron_job("nightly-sync", lambda: time.sleep(0.2), schedule="0 3 * * *")
        assert opswatch.flush(10)
        [run] = api.get("/api/0/monitors/nightly-sync").json()["runs"]
    assert run["status"] == "ok" and run["duration_ms"] >= 200
    elapsed_ms = (epoch(run["finished_at"]) - epoch(run["started_at"])) * 1000
    assert elapsed_ms == pytest.approx(run["duration_ms"], abs=1.0)  # timestamps carry milliseconds
