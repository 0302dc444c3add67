"""Schedules: what is accepted, what is refused and why, and when runs are expected (DST included)."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from opswatch import ConfigError
from opswatch.crons.schedule import NICKNAMES, ScheduleError, parse_schedule, validate_timezone


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- what is refused -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("* * 31 2 *", "never fires"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("0 0 2 * * *", "6 fields"),
        ("0 0 2 * * * 2025", "7 fields"),
        ("0 0 15W * *", "nearest weekday"),
        ("H 2 * * *", "Jenkins hash"),
        ("H/15 * * * *", "Jenkins hash"),
        ("0 0 ? * MON", "Quartz"),
        ("61 * * * *", "bad minute field"),
        ("0 24 * * *", "bad hour field"),
        ("0 0 * 13 *", "bad month field"),
        ("0 0 * * FUNDAY", "bad day-of-week field"),
        ("@reboot", "@reboot"),
        ("@fortnightly", "unknown nickname"),
        ("every 0 minutes", "at least 1"),
        ("every 5 fortnights", "cannot read the interval"),
        ("every 400 days", "longer than a year"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_it_refuses_schedules_it_cannot_monitor_with_a_clear_message(text: str, says: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text)
    assert says in str(caught.value)
    assert caught.value.setting == "schedule"
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ValueError)


def test_it_refuses_unknown_timezones_naming_the_timezone_setting() -> None:
    with pytest.raises(ScheduleError, match="unknown timezone 'Mars/Olympus_Mons'") as caught:
        parse_schedule("0 2 * * *", "Mars/Olympus_Mons")
    assert caught.value.setting == "timezone"
    with pytest.raises(ScheduleError):
        validate_timezone("../../etc/passwd")
    assert validate_timezone("Europe/Berlin") == "Europe/Berlin"


def test_it_refuses_text_that_is_not_a_string() -> None:
    with pytest.raises(ScheduleError, match="got int"):
        parse_schedule(5)  # type: ignore[arg-type]


# -- what is accepted ----------------------------------------------------------------------------------


def test_it_accepts_what_debian_cron_and_cronsim_accept() -> None:
    for text in ["0 2 * * *", "*/5 * * * *", "0 9 1 * 1", "0 0 L * *", "0 0 LW * *", "0 0 * * 5L",
                 "0 0 * * MON#2", "0 0 * JAN-MAR mon-fri", "0 0 29 2 *", "0 0 * 2 MON#5"]:
        assert parse_schedule(text).crontab == text


def test_it_expands_nicknames() -> None:
    for nickname, crontab in NICKNAMES.items():
        schedule = parse_schedule(nickname.upper())
        assert schedule.text == nickname
        assert schedule.crontab == crontab
    assert parse_schedule("@weekly").next_after(utc(2025, 6, 4, 12)) == utc(2025, 6, 8)  # a Sunday


def test_it_reads_intervals_in_several_spellings() -> None:
    assert parse_schedule("every 30 seconds").period == timedelta(seconds=30)
    assert parse_schedule("every 10 minutes").period == timedelta(minutes=10)
    assert parse_schedule("Every 2 Hours").text == "every 2 hours"
    assert parse_schedule("every minute").text == "every 1 minute"
    assert parse_schedule("every 90s").period == timedelta(seconds=90)
    assert parse_schedule("every 2 weeks").period == timedelta(weeks=2)
    assert parse_schedule("every 1 year").interval == (12, "month")


def test_it_normalizes_whitespace_and_shares_one_object_per_schedule() -> None:
    first = parse_schedule("0  2 * *   *")
    assert first.text == "0 2 * * *"
    assert parse_schedule("0 2 * * *") is first
    assert parse_schedule("0 2 * * *", "Europe/Berlin") is not first
    assert parse_schedule("0 2 * * *", "Europe/Berlin") == parse_schedule("0 2 * * *", "Europe/Berlin")


# -- when runs are expected ----------------------------------------------------------------------------


def test_it_expects_the_nightly_job_at_two_utc() -> None:
    nightly = parse_schedule("0 2 * * *")
    assert nightly.next_after(utc(2025, 1, 1, 1, 59, 59)) == utc(2025, 1, 1, 2)
    assert nightly.next_after(utc(2025, 1, 1, 2)) == utc(2025, 1, 2, 2)  # strictly after
    assert nightly.last_at_or_before(utc(2025, 1, 1, 2)) == utc(2025, 1, 1, 2)
    assert nightly.previous_before(utc(2025, 1, 1, 2)) == utc(2024, 12, 31, 2)
    assert nightly.last_at_or_before(utc(2025, 1, 1, 1, 30)) == utc(2024, 12, 31, 2)


def test_it_answers_in_utc_whatever_zone_the_question_is_in() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    answer = parse_schedule("0 2 * * *").next_after(datetime(2025, 1, 1, 12, tzinfo=berlin))
    assert answer == utc(2025, 1, 2, 2)
    assert answer.tzinfo is UTC


def test_it_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        parse_schedule("0 2 * * *").next_after(datetime(2025, 1, 1))


def test_it_runs_a_job_in_the_spring_forward_gap_at_the_first_valid_minute() -> None:
    # America/New_York, 2025-03-09: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day.
    job = parse_schedule("30 2 * * *", "America/New_York")
    assert job.next_after(utc(2025, 3, 9, 0)) == utc(2025, 3, 9, 7, 0)  # 03:00 EDT
    assert job.next_after(utc(2025, 3, 9, 7, 0)) == utc(2025, 3, 10, 6, 30)  # 02:30 EDT


def test_it_runs_a_job_in_the_fall_back_overlap_once() -> None:
    # America/New_York, 2025-11-02: 01:00-02:00 happens twice (EDT, then EST).
    job = parse_schedule("30 1 * * *", "America/New_York")
    assert job.next_after(utc(2025, 11, 2, 5, 30)) == utc(2025, 11, 3, 6, 30)
    assert job.next_after(utc(2025, 11, 2, 5, 0)) == utc(2025, 11, 2, 5, 30)  # 01:30 EDT
    assert job.next_after(utc(2025, 11, 2, 6, 0)) == utc(2025, 11, 3, 6, 30)  # no second 01:30 (EST)
    assert job.runs_between(utc(2025, 11, 1, 12), utc(2025, 11, 3, 12)) == [
        utc(2025, 11, 2, 5, 30),
        utc(2025, 11, 3, 6, 30),
    ]
    assert job.last_at_or_before(utc(2025, 11, 2, 6, 40)) == utc(2025, 11, 2, 5, 30)


def test_it_ors_day_of_month_and_day_of_week_unless_one_starts_with_a_star() -> None:
    first_or_monday = parse_schedule("0 9 1 * 1")
    assert first_or_monday.runs_between(utc(2025, 9, 1), utc(2025, 10, 7)) == [
        utc(2025, 9, 1, 9), utc(2025, 9, 8, 9), utc(2025, 9, 15, 9), utc(2025, 9, 22, 9),
        utc(2025, 9, 29, 9), utc(2025, 10, 1, 9), utc(2025, 10, 6, 9),
    ]
    odd_mondays = parse_schedule("0 0 */2 * 1")
    runs = odd_mondays.runs_between(utc(2025, 8, 31), utc(2025, 11, 1))
    assert runs == [utc(2025, 9, 1), utc(2025, 9, 15), utc(2025, 9, 29), utc(2025, 10, 13), utc(2025, 10, 27)]
    assert all(run.weekday() == 0 and run.day % 2 == 1 for run in runs)


def test_it_counts_runs_between_two_times_up_to_a_limit() -> None:
    hourly = parse_schedule("@hourly")
    assert hourly.count_between(utc(2025, 1, 1, 0, 30), utc(2025, 1, 1, 5, 30)) == 5
    assert hourly.count_between(utc(2025, 1, 1, 5), utc(2025, 1, 1, 1)) == 0
    assert parse_schedule("* * * * *").count_between(utc(2025, 1, 1), utc(2025, 2, 1), limit=500) == 500
    assert parse_schedule("every 10 minutes").count_between(utc(2025, 1, 1), utc(2025, 1, 1, 1)) == 6
    assert len(hourly.runs_between(utc(2025, 1, 1), utc(2025, 1, 2), limit=3)) == 3


def test_it_counts_an_interval_from_the_time_given() -> None:
    heartbeat = parse_schedule("every 30 seconds", "Asia/Tokyo")
    last = utc(2025, 1, 1, 12, 0, 7)
    assert heartbeat.next_after(last) == utc(2025, 1, 1, 12, 0, 37)
    assert heartbeat.last_at_or_before(last) == utc(2025, 1, 1, 11, 59, 37)
    assert heartbeat.is_interval and heartbeat.kind == "interval"
    monthly = parse_schedule("every 1 month")
    assert monthly.next_after(utc(2025, 1, 31, 8)) == utc(2025, 2, 28, 8)
    assert monthly.period is None


def test_it_iterates_runs_endlessly() -> None:
    runs = parse_schedule("0 3 * * 0").iter_after(utc(2025, 1, 1))
    assert list(itertools.islice(runs, 3)) == [utc(2025, 1, 5, 3), utc(2025, 1, 12, 3), utc(2025, 1, 19, 3)]


def test_it_gives_the_same_answers_when_asked_out_of_order_and_far_apart() -> None:
    job = parse_schedule("15 */3 * * *", "Australia/Sydney")
    moments = [utc(2030, 5, 1), utc(2025, 1, 1), utc(2025, 1, 1, 0, 10), utc(2019, 7, 4), utc(2030, 5, 1, 1)]
    first = [job.next_after(m) for m in moments]
    assert [job.next_after(m) for m in reversed(moments)] == list(reversed(first))
    assert first == [_cronsim_next("15 */3 * * *", "Australia/Sydney", m) for m in moments]


def test_it_stays_consistent_when_many_threads_ask_at_once() -> None:
    job = parse_schedule("*/7 * * * *", "Europe/London")
    start = utc(2025, 3, 30)
    expected = [_cronsim_next("*/7 * * * *", "Europe/London", start + timedelta(minutes=i)) for i in range(300)]
    results: dict[int, list[datetime]] = {}

    def ask(worker: int) -> None:
        order = range(300) if worker % 2 == 0 else range(299, -1, -1)
        answers = {i: job.next_after(start + timedelta(minutes=i)) for i in order}
        results[worker] = [answers[i] for i in range(300)]

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answers == expected for answers in results.values())


def test_it_gives_sentry_its_schedule_shape() -> None:
    assert parse_schedule("0 2 * * *").to_sentry() == {"type": "crontab", "value": "0 2 * * *"}
    assert parse_schedule("@daily").to_sentry() == {"type": "crontab", "value": "0 0 * * *"}
    assert parse_schedule("every 10 minutes").to_sentry() == {"type": "interval", "value": 10, "unit": "minute"}
    # Sentry has no seconds: round up to whole minutes, which a faster heartbeat still satisfies.
    assert parse_schedule("every 30 seconds").to_sentry() == {"type": "interval", "value": 1, "unit": "minute"}
    assert parse_schedule("every 90 seconds").to_sentry() == {"type": "interval", "value": 2, "unit": "minute"}


# -- against cronsim itself ----------------------------------------------------------------------------

_EXPRESSIONS = ["0 2 * * *", "30 1 * * *", "30 2 * * *", "*/15 * * * *", "0 */6 * * *", "0 9 1 * 1",
                "0 0 */2 * 1", "5 4 * * SUN", "0 0 L * *", "59 23 * * *", "0,30 1-3 * * *", "0 0 29 2 *"]
_ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago"]


def _cronsim_next(expression: str, zone: str, moment: datetime) -> datetime:
    """The reference: walk cronsim forward from a day and a half earlier; the first run after ``moment``."""
    tz = UTC if zone == "UTC" else ZoneInfo(zone)
    for run in CronSim(expression, (moment - timedelta(days=1, hours=12)).astimezone(tz)):
        if run > moment:
            return run.astimezone(UTC)
    raise AssertionError("no run")


@settings(max_examples=300, deadline=None)
@given(
    expression=st.sampled_from(_EXPRESSIONS),
    zone=st.sampled_from(_ZONES),
    seconds=st.integers(min_value=0, max_value=10 * 365 * 86400),
)
def test_it_agrees_with_a_plain_cronsim_walk(expression: str, zone: str, seconds: int) -> None:
    moment = utc(2020, 1, 1) + timedelta(seconds=seconds)
    schedule = parse_schedule(expression, zone)
    expected = _cronsim_next(expression, zone, moment)
    assert schedule.next_after(moment) == expected
    last = schedule.last_at_or_before(moment)
    assert last is not None and last <= moment
    assert schedule.next_after(last) == expected
