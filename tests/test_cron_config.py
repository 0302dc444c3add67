"""Monitor configuration: validation at decoration time, the wire shape, Sentry's shape, and reading both."""

from __future__ import annotations

from datetime import timedelta

import pytest

from opswatch import ConfigError
from opswatch.crons.config import MonitorConfig, parse_monitor_config, validate_slug
from opswatch.crons.schedule import ScheduleError, parse_schedule


def test_it_takes_minutes_as_numbers_or_timedeltas() -> None:
    config = MonitorConfig.create("0 2 * * *", checkin_margin=5, max_runtime=timedelta(seconds=90))
    assert config.checkin_margin == timedelta(minutes=5)
    assert config.max_runtime == timedelta(seconds=90)
    assert MonitorConfig.create("every 30 seconds", checkin_margin=0.5).checkin_margin == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("settings", "setting", "says"),
    [
        ({"checkin_margin": 0}, "checkin_margin", "must be positive"),
        ({"checkin_margin": -1}, "checkin_margin", "must be positive"),
        ({"max_runtime": timedelta(days=29)}, "max_runtime", "at most 28 days"),
        ({"max_runtime": "5"}, "max_runtime", "expected minutes"),
        ({"max_runtime": True}, "max_runtime", "expected minutes"),
        ({"max_runtime": float("nan")}, "max_runtime", "expected a number"),
        ({"failure_threshold": 0}, "failure_threshold", "from 1 to 720"),
        ({"failure_threshold": 721}, "failure_threshold", "from 1 to 720"),
        ({"recovery_threshold": 1.5}, "recovery_threshold", "whole number"),
        ({"recovery_threshold": True}, "recovery_threshold", "whole number"),
        ({"timezone": "Nowhere/Special"}, "timezone", "unknown timezone"),
    ],
)
def test_it_refuses_bad_values_naming_the_setting(settings: dict[str, object], setting: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MonitorConfig.create("0 2 * * *", **settings)  # type: ignore[arg-type]
    assert caught.value.setting == setting
    assert says in str(caught.value)


def test_it_accepts_the_thresholds_at_their_edges() -> None:
    config = MonitorConfig.create("@hourly", failure_threshold=1, recovery_threshold=720)
    assert (config.failure_threshold, config.recovery_threshold) == (1, 720)
    assert MonitorConfig.create("@hourly", max_runtime=timedelta(days=28)).max_runtime == timedelta(days=28)


@pytest.mark.parametrize("slug", ["", "Nightly", "nightly job", "-nightly", "x" * 51, "über"])
def test_it_refuses_slugs_sentry_would_not_take(slug: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_slug(slug)
    assert caught.value.setting == "slug"


def test_it_accepts_kebab_and_snake_slugs() -> None:
    assert validate_slug("check-expired-subscriptions") == "check-expired-subscriptions"
    assert validate_slug("nightly_backup_2") == "nightly_backup_2"
    assert validate_slug("x" * 50) == "x" * 50


def test_it_puts_only_the_settings_given_on_the_wire() -> None:
    assert MonitorConfig.create("0 2 * * *").to_wire() == {"schedule": "0 2 * * *", "timezone": "UTC"}
    config = MonitorConfig.create(
        "0 3 * * 0",
        timezone="America/Chicago",
        checkin_margin=timedelta(seconds=30),
        max_runtime=10,
        failure_threshold=2,
        recovery_threshold=3,
    )
    assert config.to_wire() == {
        "schedule": "0 3 * * 0",
        "timezone": "America/Chicago",
        "checkin_margin": 0.5,
        "max_runtime": 10,
        "failure_issue_threshold": 2,
        "recovery_threshold": 3,
    }


def test_it_gives_sentry_whole_minutes() -> None:
    config = MonitorConfig.create(
        "every 30 seconds", checkin_margin=timedelta(seconds=10), max_runtime=timedelta(seconds=61),
        failure_threshold=2,
    )
    assert config.to_sentry_monitor_config() == {
        "schedule": {"type": "interval", "value": 1, "unit": "minute"},
        "timezone": "UTC",
        "checkin_margin": 1,
        "max_runtime": 2,
        "failure_issue_threshold": 2,
    }


def test_it_reads_back_what_it_writes() -> None:
    config = MonitorConfig.create("30 2 * * *", timezone="America/New_York", checkin_margin=5, max_runtime=0.25,
                                  failure_threshold=3, recovery_threshold=2)
    assert MonitorConfig.from_wire(config.to_wire()) == config


def test_it_reads_sentrys_shapes() -> None:
    fields = parse_monitor_config(
        {"schedule": {"type": "interval", "value": 10, "unit": "minute"}, "checkin_margin": 0,
         "max_runtime": 30, "failure_issue_threshold": 2, "timezone": "Europe/Paris", "owner": "team:ops"}
    )
    assert fields == {
        "schedule": parse_schedule("every 10 minutes", "Europe/Paris"),
        "timezone": "Europe/Paris",
        "checkin_margin": timedelta(minutes=1),  # Sentry: a margin of 0 means its minimum, 1 minute
        "max_runtime": timedelta(minutes=30),
        "failure_threshold": 2,
    }
    legacy = parse_monitor_config({"schedule_type": "interval", "schedule": [2, "hour"]})
    assert legacy["schedule"] == parse_schedule("every 2 hours")
    crontab = parse_monitor_config({"schedule": {"type": "crontab", "value": "0 2 * * *"}})
    assert crontab == {"schedule": parse_schedule("0 2 * * *"), "timezone": "UTC"}


def test_it_reads_only_the_keys_sent() -> None:
    assert parse_monitor_config({"max_runtime": 5, "recovery_threshold": None}) == {
        "max_runtime": timedelta(minutes=5)
    }
    assert parse_monitor_config({}) == {}


@pytest.mark.parametrize(
    ("data", "setting"),
    [
        ({"schedule": "* * 31 2 *"}, "schedule"),
        ({"schedule": {"type": "interval", "value": 10, "unit": "fortnight"}}, "schedule"),
        ({"schedule": {"type": "solar"}}, "schedule"),
        ({"schedule": 5}, "schedule"),
        ({"timezone": 3}, "timezone"),
        ({"max_runtime": "long"}, "max_runtime"),
        ({"failure_threshold": 0}, "failure_threshold"),
    ],
)
def test_it_refuses_bad_wire_config_naming_the_key(data: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_monitor_config(data)
    assert caught.value.setting == setting


def test_it_needs_a_schedule_for_a_whole_config() -> None:
    with pytest.raises(ScheduleError, match="no schedule"):
        MonitorConfig.from_wire({"max_runtime": 5})
