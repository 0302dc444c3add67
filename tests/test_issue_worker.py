"""The issue sweeper: auto-resolve from its own thread, on time, and a stop that stops."""

from __future__ import annotations

import datetime
import time

from opswatch.record import format_timestamp
from opswatch.server.issues import IssueService, IssueSettings, IssueSweeper
from opswatch.server.issues.service import install_tables
from opswatch.server.state.base import create_engine_for


def test_it_auto_resolves_from_its_thread_and_stops(state_url: str) -> None:
    engine = create_engine_for(state_url)
    install_tables(engine)
    now = [datetime.datetime(2025, 11, 2, 9, 0, tzinfo=datetime.UTC)]
    service = IssueService(engine, now=lambda: now[0])
    service.record(
        [
            {
                "event_id": "a" * 32,
                "timestamp": format_timestamp(now[0].timestamp()),
                "level": "error",
                "message": "nightly export failed for batch 7",
                "project_id": 1,
            }
        ]
    )
    now[0] += datetime.timedelta(days=3)
    sweeper = IssueSweeper(service, IssueSettings(auto_resolve_days=2, sweep_interval=0.02))
    sweeper.start()
    try:
        deadline = time.monotonic() + 30
        while service.list_issues(status="resolved").total == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sweeper.stop()
    assert service.list_issues(status="resolved").total == 1
    assert sweeper.passes >= 1
    passes = sweeper.passes
    time.sleep(0.06)
    assert sweeper.passes == passes  # stopped means stopped
    engine.dispose()
