"""The monitor service over a real SQLite state store: restarts, two servers on one database, refusals,
schedule changes from check-ins, pruning. The behaviour cases of the issue are in test_monitor_engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from opswatch.server.monitors import MonitorService
from opswatch.server.monitors.checkins import from_record
from opswatch.server.monitors.errors import MonitorConfigError
from opswatch.server.state.base import create_engine_for


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def checkin(slug: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "check_in", "project_id": 1, "monitor_slug": slug, "status": status, **fields}


HOURLY = {"schedule": "0 * * * *"}


@pytest.fixture
def state_engine(state_url: str) -> Iterator[Any]:
    """The state store, on SQLite and on PostgreSQL (``state_url`` in ``conftest.py``)."""
    engine = create_engine_for(state_url)
    yield engine
    engine.dispose()


def test_it_lets_only_one_of_two_servers_decide_a_change(state_engine: Any) -> None:
    first = MonitorService(state_engine)
    first.process([checkin("sync", "ok", monitor_config=HOURLY)], now=at("2025-01-01T00:00:10"))
    second = MonitorService(state_engine)  # another replica, same database
    first.process([checkin("sync", "ok")], now=at("2025-01-01T01:00:05"))
    # the second server's memory still expects 01:00; its write conflicts, it reloads and finds no miss
    report = second.tick(at("2025-01-01T01:01:30"))
    assert report.changes == 0
    assert second.counters["conflicts"] == 1
    entry = second.find("sync", 1)
    assert entry.state.status == "ok" and iso(entry.state.next_expected) == "2025-01-01T02:00:00Z"
    assert [row.kind for row in second.changes(entry)] == ["created"]


def test_it_recognises_a_duplicate_result_after_a_restart(state_engine: Any) -> None:
    service = MonitorService(state_engine)
    service.process(
        [checkin("sync", "in_progress", check_in_id="r1", monitor_config=HOURLY)],
        now=at("2025-01-01T00:00:00"),
    )
    service.process([checkin("sync", "ok", check_in_id="r1")], now=at("2025-01-01T00:00:30"))
    restarted = MonitorService(state_engine)
    [reason] = restarted.process([checkin("sync", "ok", check_in_id="r1")], now=at("2025-01-01T00:00:40"))
    assert reason is None
    result = restarted.checkin(
        from_record(checkin("sync", "in_progress", check_in_id="r1")), now=at("2025-01-01T00:00:41")
    )
    assert result.ignored is not None and "already finished" in result.ignored
    runs = restarted.runs(restarted.find("sync", 1))
    assert [(row.run_key, row.status) for row in runs] == [("r1", "ok")]


def test_it_times_out_a_run_left_open_across_a_restart(state_engine: Any) -> None:
    service = MonitorService(state_engine)
    config = {"schedule": "@daily", "max_runtime": 5}
    service.process(
        [checkin("export", "in_progress", check_in_id="hung", monitor_config=config)],
        now=at("2025-01-01T00:00:30"),
    )
    restarted = MonitorService(state_engine)
    restarted.tick(at("2025-01-01T00:05:29"))
    assert restarted.find("export", 1).state.status == "new"
    restarted.tick(at("2025-01-01T00:05:30"))
    entry = restarted.find("export", 1)
    assert entry.state.status == "failing"
    assert [row.status for row in restarted.runs(entry)] == ["timeout"]


def test_it_tells_ingest_why_a_check_in_would_be_refused(state_engine: Any) -> None:
    service = MonitorService(state_engine)
    assert "no monitor 'ghost'" in (service.refusal(1, checkin("ghost", "ok")) or "")
    assert "6 fields" in (
        service.refusal(1, checkin("ghost", "ok", monitor_config={"schedule": "* * * * * *"})) or ""
    )
    assert "decided by the server" in (service.refusal(1, checkin("ghost", "missed")) or "")
    assert service.refusal(1, checkin("ghost", "ok", monitor_config=HOURLY)) is None
    service.process([checkin("ghost", "ok", monitor_config=HOURLY)], now=at("2025-01-01T00:00:10"))
    assert service.refusal(1, checkin("ghost", "ok")) is None
    assert service.refusal(2, checkin("ghost", "ok")) is not None  # another project's slug


def test_it_recounts_the_next_slot_when_a_check_in_changes_the_schedule(state_engine: Any) -> None:
    service = MonitorService(state_engine)
    service.process([checkin("report", "ok", monitor_config=HOURLY)], now=at("2025-01-01T00:00:10"))
    service.process(
        [checkin("report", "ok", monitor_config={"schedule": "30 6 * * *", "owner": "team-a"})],
        now=at("2025-01-01T01:00:10"),
    )
    entry = service.find("report", 1)
    assert entry.config == {"schedule": "30 6 * * *"}  # unknown keys in a check-in are ignored
    assert iso(entry.state.next_expected) == "2025-01-01T06:30:00Z"
    service.tick(at("2025-01-01T02:05:00"))
    assert entry.state.status == "ok"
    with pytest.raises(MonitorConfigError) as caught:
        service.update(entry, {"schedule": "@hourly", "owner": "team-a"})  # the API is strict
    assert caught.value.key == "owner"


def test_it_prunes_old_history_but_keeps_open_runs_and_pending_changes(state_engine: Any) -> None:
    service = MonitorService(state_engine, retention_days=1)
    service.process([checkin("sync", "ok", monitor_config=HOURLY)], now=at("2025-01-01T00:00:10"))
    service.process([checkin("sync", "in_progress", check_in_id="long")], now=at("2025-01-01T00:00:20"))
    entry = service.find("sync", 1)
    assert service.prune(at("2025-01-03T00:00:00")) == 1  # the finished run; changes are not yet stored
    assert [row.run_key for row in service.runs(entry)] == ["long"]
    assert len(service.changes(entry)) == 1
