"""The cron monitor rules: the issue's 17 behaviour cases, driven by an injected clock.

Cases 1-10 and 12-17 run the pure engine (``opswatch.server.monitors.engine``) with rules built by the
real configuration code; cases 11 and 16's notification half run the monitor service on a real SQLite
file. Dates are UTC unless a zone is named. Nothing here sleeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from opswatch.alerts.channels.slack import SlackChannel
from opswatch.alerts.delivery import Notifier
from opswatch.server.monitors import CronClock, MonitorService, engine
from opswatch.server.monitors import config as monitor_config
from opswatch.server.monitors.engine import Change, CheckIn, MonitorState, Rules
from opswatch.server.monitors.errors import MonitorConfigError
from opswatch.server.monitors.outbox import Outbox
from opswatch.server.state.base import create_engine_for
from slack_receiver import SlackReceiver


def at(text: str) -> float:
    """Epoch seconds of an ISO time (UTC unless it has an offset)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Job:
    """One monitored job: its rules, its state, and every change and run the engine reported."""

    rules: Rules
    state: MonitorState = dataclasses.field(default_factory=MonitorState)
    changes: list[Change] = dataclasses.field(default_factory=list)
    ignored: list[str] = dataclasses.field(default_factory=list)
    runs: dict[str, engine.Run] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, **settings: Any) -> Job:
        return cls(monitor_config.rules_for(monitor_config.normalize(settings)))

    def _keep(self, out: engine.Outcome) -> engine.Outcome:
        self.changes.extend(out.changes)
        for run in out.runs:
            self.runs[run.key] = run
        if out.ignored:
            self.ignored.append(out.ignored)
        return out

    def checkin(
        self, status: str, when: str, run_id: str | None = None, duration: float | None = None
    ) -> engine.Outcome:
        ci = CheckIn(status, run_id, duration)  # type: ignore[arg-type]
        return self._keep(engine.checkin(self.rules, self.state, ci, at(when)))

    def tick(self, when: str | float) -> engine.Outcome:
        now = at(when) if isinstance(when, str) else when
        return self._keep(engine.tick(self.rules, self.state, now))

    def run_clock(self, start: str, end: str, step: float = 1.0) -> None:
        """Tick every ``step`` seconds from ``start`` to ``end`` inclusive, like the server's clock."""
        now, stop = at(start), at(end)
        while now <= stop:
            self.tick(now)
            now += step

    def kinds(self) -> list[str]:
        return [change.kind for change in self.changes]

    def of_kind(self, kind: str) -> list[Change]:
        return [change for change in self.changes if change.kind == kind]


@pytest.fixture
def nightly_job() -> Job:
    """The nightly job: ``0 2 * * *`` with a five-minute margin, checked in once on the previous night."""
    job = Job.of(schedule="0 2 * * *", checkin_margin=5)
    job.checkin("ok", "2025-01-01T02:00:10")
    return job


# 1 ---------------------------------------------------------------------------------------------------


def test_it_marks_the_slot_missed_exactly_at_the_margin_and_dates_it_at_the_expected_time(
    nightly_job: Job,
) -> None:
    nightly_job.tick("2025-01-02T02:04:59")
    assert nightly_job.changes == []
    nightly_job.tick("2025-01-02T02:05:00")
    [missed] = nightly_job.of_kind("missed")
    assert iso(missed.at) == "2025-01-02T02:00:00Z"
    assert missed.details["slots"] == 1
    assert nightly_job.state.status == "failing"


# 2 ---------------------------------------------------------------------------------------------------


def test_it_counts_an_in_progress_check_in_just_inside_the_margin_for_the_slot(nightly_job: Job) -> None:
    nightly_job.checkin("in_progress", "2025-01-02T02:04:59", run_id="r1")
    nightly_job.tick("2025-01-02T02:05:00")
    nightly_job.tick("2025-01-02T02:06:00")
    assert nightly_job.of_kind("missed") == []
    assert iso(nightly_job.state.next_expected) == "2025-01-03T02:00:00Z"


# 3 ---------------------------------------------------------------------------------------------------


def test_it_defaults_to_a_one_minute_margin_and_a_thirty_minute_runtime() -> None:
    job = Job.of(schedule="0 2 * * *")
    assert job.rules.checkin_margin == 60
    assert job.rules.max_runtime == 30 * 60
    job.checkin("ok", "2025-01-01T02:00:00")
    job.tick("2025-01-02T02:00:59")
    assert job.changes == []
    job.tick("2025-01-02T02:01:00")
    assert job.kinds() == ["missed", "failing"]

    runner = Job.of(schedule="0 2 * * *")
    runner.checkin("in_progress", "2025-01-01T02:00:00", run_id="long")
    runner.tick("2025-01-01T02:29:59")
    assert runner.of_kind("timeout") == []
    runner.tick("2025-01-01T02:30:00")
    assert len(runner.of_kind("timeout")) == 1


# 4 ---------------------------------------------------------------------------------------------------


def test_it_times_a_run_out_from_its_real_start_not_the_minute() -> None:
    job = Job.of(schedule="0 2 * * *", max_runtime=5)
    job.checkin("in_progress", "2025-01-01T02:00:30", run_id="a")
    job.tick("2025-01-01T02:05:29")
    assert job.of_kind("timeout") == []
    job.tick("2025-01-01T02:05:30")
    [timeout] = job.of_kind("timeout")
    assert iso(timeout.at) == "2025-01-01T02:05:30Z"
    assert job.runs["a"].status == "timeout"


# 5 ---------------------------------------------------------------------------------------------------


def test_it_records_the_duration_of_a_late_ok_but_keeps_the_run_timed_out() -> None:
    job = Job.of(schedule="0 2 * * *", max_runtime=5)
    job.checkin("in_progress", "2025-01-01T02:00:30", run_id="a")
    job.tick("2025-01-01T02:05:30")
    job.checkin("ok", "2025-01-01T02:07:00", run_id="a")
    run = job.runs["a"]
    assert run.status == "timeout"
    assert run.duration == pytest.approx(390.0)
    assert iso(run.finished_at) == "2025-01-01T02:07:00Z"
    assert job.state.status == "failing"  # the late ok does not count towards recovery
    assert job.of_kind("recovered") == []


# 6 ---------------------------------------------------------------------------------------------------


def test_it_flags_a_hung_run_even_when_a_newer_run_finished() -> None:
    job = Job.of(schedule="*/5 * * * *", max_runtime=10, checkin_margin=1)
    job.checkin("in_progress", "2025-01-01T02:00:00", run_id="A")
    job.checkin("in_progress", "2025-01-01T02:05:00", run_id="B")
    job.checkin("ok", "2025-01-01T02:05:40", run_id="B")
    job.checkin("ok", "2025-01-01T02:10:05")
    job.tick("2025-01-01T02:10:00")
    [timeout] = job.of_kind("timeout")
    assert timeout.details["run_id"] == "A"
    assert job.runs["A"].status == "timeout"
    assert job.runs["B"].status == "ok"


# 7 ---------------------------------------------------------------------------------------------------


def test_it_fails_only_after_the_threshold_of_consecutive_bad_outcomes_dated_at_the_first() -> None:
    job = Job.of(schedule="0 * * * *", failure_threshold=3)
    job.checkin("ok", "2025-01-01T00:00:05")
    job.checkin("error", "2025-01-01T01:00:05")
    job.run_clock("2025-01-01T01:59:00", "2025-01-01T02:01:30", step=30)  # the 02:00 slot is missed
    assert job.kinds() == ["missed"]
    assert job.state.status != "failing"
    job.checkin("error", "2025-01-01T03:00:05")
    [failing] = job.of_kind("failing")
    assert iso(failing.details["since"]) == "2025-01-01T01:00:05Z"
    assert failing.details["reason"] == "error"
    assert iso(failing.details["last_ok_at"]) == "2025-01-01T00:00:05Z"
    assert job.state.status == "failing"


# 8 ---------------------------------------------------------------------------------------------------


def test_it_recovers_only_after_the_threshold_of_consecutive_oks() -> None:
    job = Job.of(schedule="0 * * * *", recovery_threshold=2)
    job.checkin("error", "2025-01-01T00:00:05")
    assert job.state.status == "failing"
    job.checkin("ok", "2025-01-01T01:00:05")
    assert job.state.status == "failing"
    assert job.of_kind("recovered") == []
    job.checkin("ok", "2025-01-01T02:00:05")
    assert job.state.status == "ok"
    [recovered] = job.of_kind("recovered")
    assert iso(recovered.details["since"]) == "2025-01-01T00:00:05Z"


# 9 ---------------------------------------------------------------------------------------------------


def test_it_counts_an_early_check_in_from_a_fast_clock_for_the_coming_slot() -> None:
    job = Job.of(schedule="0 2 * * *", early_margin=5)
    job.checkin("ok", "2025-01-01T02:00:00")
    job.checkin("ok", "2025-01-02T01:58:40")  # the client's clock is 90 s fast
    job.run_clock("2025-01-02T01:59:00", "2025-01-02T02:10:00", step=10)
    assert job.changes == []
    assert iso(job.state.next_expected) == "2025-01-03T02:00:00Z"


def test_it_does_not_count_a_check_in_closer_to_the_previous_slot_for_the_next_one() -> None:
    job = Job.of(schedule="* * * * *", early_margin=5)  # early margin larger than the gap
    job.checkin("ok", "2025-01-01T02:00:00")
    job.checkin("ok", "2025-01-01T02:00:20")  # a manual rerun, nearer 02:00 than 02:01
    assert iso(job.state.next_expected) == "2025-01-01T02:01:00Z"


# 10 --------------------------------------------------------------------------------------------------


def test_it_ignores_a_duplicate_ok_and_an_in_progress_after_ok_for_the_same_run() -> None:
    job = Job.of(schedule="0 * * * *", recovery_threshold=2)
    job.checkin("error", "2025-01-01T00:00:05", run_id="r0")
    job.checkin("in_progress", "2025-01-01T01:00:00", run_id="r1")
    job.checkin("ok", "2025-01-01T01:00:30", run_id="r1")
    duplicate = job.checkin("ok", "2025-01-01T01:00:31", run_id="r1")
    assert duplicate.ignored and "duplicate" in duplicate.ignored
    assert job.state.status == "failing"  # the duplicate did not count as a second ok
    late_start = job.checkin("in_progress", "2025-01-01T01:00:32", run_id="r1")
    assert late_start.ignored
    assert "r1" not in job.state.open_runs
    assert job.runs["r1"].status == "ok"
    assert job.runs["r1"].duration == pytest.approx(30.0)


# 12 --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("* * 31 2 *", "never fires"),
        ("0 2 * * * *", "6 fields"),
        ("0 0 15W * *", "nearest weekday"),
        ("H 2 * * *", "Jenkins"),
        ("0 2 * *", "4 fields"),
        ("0 25 * * *", "hour"),
    ],
)
def test_it_rejects_schedules_cron_cannot_run_with_a_clear_message(schedule: str, words: str) -> None:
    with pytest.raises(MonitorConfigError) as caught:
        monitor_config.normalize({"schedule": schedule})
    assert caught.value.key == "schedule"
    assert words in str(caught.value)


def test_it_rejects_bad_settings_naming_them() -> None:
    for settings, key in [
        ({"schedule": "@daily", "timezone": "Mars/Olympus"}, "timezone"),
        ({"schedule": "@daily", "failure_threshold": 0}, "failure_threshold"),
        ({"schedule": "@daily", "recovery_threshold": 721}, "recovery_threshold"),
        ({"schedule": "@daily", "max_runtime": -1}, "max_runtime"),
        ({"schedule": "@daily", "checkin_margin": "soon"}, "checkin_margin"),
        ({"schedule": "@daily", "retries": 3}, "retries"),
    ]:
        with pytest.raises(MonitorConfigError) as caught:
            monitor_config.normalize(settings)
        assert caught.value.key == key


# 13 --------------------------------------------------------------------------------------------------


def test_it_expects_a_job_in_the_spring_forward_gap_at_the_first_valid_minute() -> None:
    job = Job.of(schedule="30 2 * * *", timezone="America/New_York")
    job.checkin("ok", "2025-03-08T07:30:00")  # 02:30 EST
    assert iso(job.state.next_expected) == "2025-03-09T07:00:00Z"  # 03:00 EDT, the gap's end
    job.checkin("ok", "2025-03-09T07:00:10")
    assert iso(job.state.next_expected) == "2025-03-10T06:30:00Z"  # 02:30 EDT
    job.run_clock("2025-03-09T06:00:00", "2025-03-09T08:00:00", step=60)
    assert job.changes == []


# 14 --------------------------------------------------------------------------------------------------


def test_it_runs_a_job_in_the_fall_back_overlap_once() -> None:
    job = Job.of(schedule="30 1 * * *", timezone="America/New_York")
    job.checkin("ok", "2025-11-02T05:30:00")  # 01:30 EDT, the first of two 01:30s
    assert iso(job.state.next_expected) == "2025-11-03T06:30:00Z"
    job.run_clock("2025-11-02T05:31:00", "2025-11-02T07:00:00", step=30)  # through 01:30 EST
    assert job.changes == []


# 15 --------------------------------------------------------------------------------------------------


def _expected_series(schedule: str, start: str, count: int) -> list[str]:
    job = Job.of(schedule=schedule)
    slots = job.rules.slots
    out, now = [], at(start)
    for _ in range(count):
        now = slots.next_after(now)
        out.append(iso(now) or "")
    return out


def test_it_ors_day_of_month_and_day_of_week_unless_one_starts_with_a_star() -> None:
    # 2025-09: the 1st is a Monday; Mondays are 1, 8, 15, 22, 29; October 1st is a Wednesday.
    assert _expected_series("0 9 1 * 1", "2025-09-01T00:00:00", 6) == [
        "2025-09-01T09:00:00Z",
        "2025-09-08T09:00:00Z",
        "2025-09-15T09:00:00Z",
        "2025-09-22T09:00:00Z",
        "2025-09-29T09:00:00Z",
        "2025-10-01T09:00:00Z",
    ]
    # */2 starts with a star: Mondays that are odd days of the month.
    assert _expected_series("0 0 */2 * 1", "2025-08-31T12:00:00", 4) == [
        "2025-09-01T00:00:00Z",
        "2025-09-15T00:00:00Z",
        "2025-09-29T00:00:00Z",
        "2025-10-13T00:00:00Z",
    ]


def test_it_follows_the_schedule_from_slot_to_slot_for_an_or_schedule() -> None:
    job = Job.of(schedule="0 9 1 * 1")
    job.checkin("ok", "2025-09-29T09:00:05")  # a Monday
    assert iso(job.state.next_expected) == "2025-10-01T09:00:00Z"  # the 1st, a Wednesday


# 16 --------------------------------------------------------------------------------------------------


def test_it_makes_one_failing_episode_from_five_hours_of_silence_while_running() -> None:
    job = Job.of(schedule="0 * * * *")
    job.checkin("ok", "2025-01-01T00:00:10")
    job.run_clock("2025-01-01T00:00:11", "2025-01-01T05:30:00", step=1)
    missed = job.of_kind("missed")
    assert [iso(change.at) for change in missed] == [
        "2025-01-01T01:00:00Z",
        "2025-01-01T02:00:00Z",
        "2025-01-01T03:00:00Z",
        "2025-01-01T04:00:00Z",
        "2025-01-01T05:00:00Z",
    ]
    assert all(change.details["slots"] == 1 for change in missed)
    assert len(job.of_kind("failing")) == 1
    assert job.state.episode_missed == 5
    assert [run.status for run in job.runs.values()].count("missed") == 5
    job.checkin("ok", "2025-01-01T06:00:03")
    [recovered] = job.of_kind("recovered")
    assert recovered.details["missed"] == 5


def test_it_catches_up_after_server_downtime_with_one_miss_naming_the_slots() -> None:
    job = Job.of(schedule="0 * * * *")
    job.checkin("ok", "2025-01-01T00:00:10")
    job.tick("2025-01-01T00:30:00")
    # the server is down from 00:30 to 05:30
    job.tick("2025-01-01T05:30:00")
    [missed] = job.of_kind("missed")
    assert missed.details["slots"] == 5
    assert iso(missed.at) == "2025-01-01T01:00:00Z"
    assert iso(missed.details["last_expected_at"]) == "2025-01-01T05:00:00Z"
    assert iso(job.state.next_expected) == "2025-01-01T06:00:00Z"
    assert len(job.of_kind("failing")) == 1
    job.tick("2025-01-01T05:30:01")
    assert len(job.of_kind("missed")) == 1


def test_it_catches_up_on_a_check_in_that_arrives_before_the_clock_after_downtime() -> None:
    job = Job.of(schedule="0 * * * *")
    job.checkin("ok", "2025-01-01T00:00:10")
    job.checkin("ok", "2025-01-01T03:00:02")  # first thing the restarted server sees
    [missed] = job.of_kind("missed")
    assert missed.details["slots"] == 2  # 01:00 and 02:00
    assert iso(job.state.next_expected) == "2025-01-01T04:00:00Z"
    assert job.state.status == "ok"


# 17 --------------------------------------------------------------------------------------------------


def test_it_never_misses_a_monitor_that_never_checked_in() -> None:
    job = Job.of(schedule="* * * * *")
    job.run_clock("2025-01-01T00:00:00", "2025-01-01T03:00:00", step=7)
    assert job.changes == []
    assert job.state.status == "new"
    assert engine.next_deadline(job.rules, job.state) is None


# heartbeats and pausing ------------------------------------------------------------------------------


def test_it_counts_an_interval_heartbeat_from_its_last_check_in() -> None:
    job = Job.of(schedule="every 2 seconds")
    assert job.rules.checkin_margin == 2
    job.checkin("ok", "2025-01-01T00:00:00")
    job.checkin("ok", "2025-01-01T00:00:03")
    job.tick("2025-01-01T00:00:06.9")
    assert job.changes == []
    job.tick("2025-01-01T00:00:07")
    [missed] = job.of_kind("missed")
    assert iso(missed.at) == "2025-01-01T00:00:05Z"


def test_it_never_judges_a_paused_monitor_and_restarts_counting_on_resume() -> None:
    job = Job.of(schedule="0 * * * *")
    job.checkin("ok", "2025-01-01T00:00:10")
    engine.pause(job.state)
    assert job.state.status == "paused"
    job.run_clock("2025-01-01T00:00:11", "2025-01-01T03:30:00", step=60)
    assert job.changes == []
    job._keep(engine.resume(job.rules, job.state, at("2025-01-01T03:30:00")))
    assert iso(job.state.next_expected) == "2025-01-01T04:00:00Z"
    job.tick("2025-01-01T04:00:59")
    assert job.changes == []


# -- cases that need the service: a real SQLite state store, a real notifier, a real Slack stand-in -----


@pytest.fixture
def state_engine(state_url: str) -> Iterator[Any]:
    """The state store, on SQLite and on PostgreSQL (``state_url`` in ``conftest.py``)."""
    engine = create_engine_for(state_url)
    yield engine
    engine.dispose()


def checkin_record(slug: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "check_in", "project_id": 1, "monitor_slug": slug, "status": status, **fields}


# 11 --------------------------------------------------------------------------------------------------


def test_it_rejects_a_check_in_for_an_unknown_slug_without_config_and_creates_one_with_config(
    state_engine: Any,
) -> None:
    service = MonitorService(state_engine)
    now = at("2025-01-01T02:00:05")
    [reason] = service.process([checkin_record("nightly-report", "ok")], now=now)
    assert reason is not None and "no monitor 'nightly-report'" in reason and "monitor_config" in reason
    assert len(service) == 0
    [rejection] = service.rejections()
    assert rejection.slug == "nightly-report" and rejection.count == 1

    config = {"schedule": "0 2 * * *", "checkin_margin": 5, "max_runtime": 10}
    [reason] = service.process([checkin_record("nightly-report", "ok", monitor_config=config)], now=now)
    assert reason is None
    entry = service.find("nightly-report", 1)
    assert entry.state.status == "ok"
    assert entry.rules.checkin_margin == 300 and entry.rules.max_runtime == 600
    assert iso(entry.state.next_expected) == "2025-01-02T02:00:00Z"

    [reason] = service.process(
        [checkin_record("bad-one", "ok", monitor_config={"schedule": "0 2 * * * *"})], now=now
    )
    assert reason is not None and "6 fields" in reason


def test_it_changes_only_the_settings_a_check_in_sends(state_engine: Any) -> None:
    service = MonitorService(state_engine)
    config = {"schedule": "0 2 * * *", "checkin_margin": 5, "failure_threshold": 2}
    service.process([checkin_record("nightly", "ok", monitor_config=config)], now=at("2025-01-01T02:00:05"))
    service.process(
        [checkin_record("nightly", "ok", monitor_config={"max_runtime": 15})], now=at("2025-01-02T02:00:05")
    )
    reloaded = MonitorService(state_engine).find("nightly", 1)
    assert reloaded.config == {
        "schedule": "0 2 * * *",
        "checkin_margin_seconds": 300.0,
        "failure_threshold": 2,
        "max_runtime_seconds": 900.0,
    }


# 16, with notifications ------------------------------------------------------------------------------


def test_it_announces_five_hours_of_silence_once_and_its_recovery_once(state_engine: Any) -> None:
    with SlackReceiver() as slack:
        notifier = Notifier([SlackChannel(slack.url)])
        try:
            service = MonitorService(state_engine, notifications=True)
            clock = CronClock(service, Outbox(state_engine, None, notifier))
            service.process(
                [checkin_record("hourly-sync", "ok", monitor_config={"schedule": "0 * * * *"})],
                now=at("2025-01-01T00:00:10"),
            )
            now, stop = at("2025-01-01T00:00:15"), at("2025-01-01T05:30:00")
            while now <= stop:
                clock.run_once(now)
                now += 30
            assert notifier.flush(10)
            assert len(slack.messages) == 1
            [failing] = slack.texts()
            assert "Cron Job Failure" in failing and "hourly-sync" in failing
            assert "missed" in failing and "Last good run" in failing and "2025-01-01 00:00:10 UTC" in failing

            entry = service.find("hourly-sync", 1)
            kinds = [row.kind for row in reversed(service.changes(entry))]
            assert kinds.count("missed") == 5 and kinds.count("failing") == 1
            assert [run.status for run in service.runs(entry)].count("missed") == 5

            service.process([checkin_record("hourly-sync", "ok")], now=at("2025-01-01T06:00:02"))
            clock.run_once(at("2025-01-01T06:00:03"))
            clock.run_once(at("2025-01-01T06:00:04"))
            assert notifier.flush(10)
            assert len(slack.messages) == 2
            assert "Cron Job Recovered" in slack.texts()[1]
        finally:
            notifier.close(5)


def test_it_catches_up_after_a_restart_with_one_miss_naming_the_slots(state_engine: Any) -> None:
    service = MonitorService(state_engine)
    service.process(
        [checkin_record("hourly-sync", "ok", monitor_config={"schedule": "0 * * * *"})],
        now=at("2025-01-01T00:00:10"),
    )
    service.tick(at("2025-01-01T00:30:00"))
    # the server is down from 00:30 until 05:30, then starts again from its database
    restarted = MonitorService(state_engine)
    restarted.tick(at("2025-01-01T05:30:00"))
    restarted.tick(at("2025-01-01T05:30:01"))
    entry = restarted.find("hourly-sync", 1)
    missed = [row for row in restarted.changes(entry) if row.kind == "missed"]
    assert len(missed) == 1
    assert missed[0].details["slots"] == 5
    [run] = [run for run in restarted.runs(entry) if run.status == "missed"]
    assert run.missed_slots == 5


def test_it_sends_no_recovery_for_an_episode_that_was_not_announced(state_engine: Any) -> None:
    with SlackReceiver() as slack:
        notifier = Notifier([SlackChannel(slack.url)])
        try:
            service = MonitorService(state_engine, notifications=False)
            clock = CronClock(service, Outbox(state_engine, None, notifier))
            service.process(
                [checkin_record("quiet", "error", monitor_config={"schedule": "@hourly"})],
                now=at("2025-01-01T00:00:10"),
            )
            service.notifications = True  # switched on mid-episode
            service.process([checkin_record("quiet", "ok")], now=at("2025-01-01T01:00:10"))
            clock.run_once(at("2025-01-01T01:00:11"))
            assert notifier.flush(30)
            assert slack.messages == []
        finally:
            notifier.close(5)
