"""Monitor configuration: what travels with a check-in so the monitor is created or updated on first run.

``MonitorConfig.create(...)`` validates everything when a job is decorated, so a bad schedule fails at
import time with a message naming the setting, not at 2 AM. The same module reads configuration back
from the wire (``parse_monitor_config``), in opswatch's own shape or Sentry's, for the server.

Units: ``checkin_margin`` and ``max_runtime`` are minutes when given as numbers (Sentry's unit; fractions
allowed, ``0.5`` is 30 seconds) or a ``datetime.timedelta``. Thresholds are whole numbers from 1 to 720.
Anything left out is left to the server's defaults (Sentry's: a 1 minute margin, 30 minutes of runtime,
thresholds of 1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final, TypedDict

from ..config import ConfigError
from .schedule import Schedule, ScheduleError, parse_schedule, validate_timezone

__all__ = [
    "MAX_DURATION",
    "MAX_THRESHOLD",
    "MonitorConfig",
    "MonitorConfigFields",
    "parse_monitor_config",
    "validate_slug",
]

#: Longest ``checkin_margin`` or ``max_runtime``: 28 days (Sentry's limit is 40,320 minutes).
MAX_DURATION: Final = timedelta(days=28)
#: Largest failure or recovery threshold (Sentry's limit).
MAX_THRESHOLD: Final = 720
#: Longest monitor slug (Sentry's limit).
MAX_SLUG_LENGTH: Final = 50

_SLUG_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
_SENTRY_UNITS: Final = {"minute": "minute", "hour": "hour", "day": "day", "week": "week", "month": "month",
                        "year": "year"}


def validate_slug(slug: object) -> str:
    """Return ``slug`` if it is a valid monitor slug (lower-case letters, digits, ``-``, ``_``; 1-50)."""
    if not isinstance(slug, str) or not slug:
        raise ConfigError("slug", f"expected a non-empty monitor slug such as 'nightly-backup', got {slug!r}")
    if len(slug) > MAX_SLUG_LENGTH:
        raise ConfigError("slug", f"{slug!r} is longer than {MAX_SLUG_LENGTH} characters")
    if not set(slug) <= _SLUG_CHARS or slug[0] in "-_":
        raise ConfigError(
            "slug",
            f"{slug!r} is not a monitor slug: use lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit (kebab-case, like 'check-expired-subscriptions')",
        )
    return slug


def _duration(setting: str, value: object) -> timedelta:
    """Minutes (a number) or a timedelta -> timedelta within (0, MAX_DURATION]."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(setting, f"expected a number of minutes, got {value!r}")
        result = timedelta(minutes=value)
    else:
        raise ConfigError(
            setting, f"expected minutes as a number or a datetime.timedelta, got {type(value).__name__}"
        )
    if result <= timedelta(0):
        raise ConfigError(setting, f"must be positive, got {value!r}")
    if result > MAX_DURATION:
        raise ConfigError(setting, f"must be at most {MAX_DURATION.days} days, got {value!r}")
    return result


def _threshold(setting: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(setting, f"expected a whole number from 1 to {MAX_THRESHOLD}, got {value!r}")
    if not 1 <= value <= MAX_THRESHOLD:
        raise ConfigError(setting, f"must be from 1 to {MAX_THRESHOLD}, got {value}")
    return value


def _minutes(value: timedelta) -> float | int:
    """A duration in minutes, as an int when whole (how Sentry and people write it)."""
    minutes = value.total_seconds() / 60
    return int(minutes) if minutes.is_integer() else round(minutes, 6)


def _sentry_minutes(value: timedelta) -> int:
    """Whole minutes for Sentry, rounded up, at least 1 (Sentry has no smaller unit)."""
    return max(1, math.ceil(value.total_seconds() / 60 - 1e-9))


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """A validated monitor configuration. ``None`` fields are left to the server's defaults."""

    schedule: Schedule
    checkin_margin: timedelta | None = None
    max_runtime: timedelta | None = None
    failure_threshold: int | None = None
    recovery_threshold: int | None = None

    @property
    def timezone(self) -> str:
        """The IANA timezone the schedule is read in."""
        return self.schedule.timezone

    @classmethod
    def create(
        cls,
        schedule: str | Schedule,
        *,
        timezone: str | None = None,
        checkin_margin: float | timedelta | None = None,
        max_runtime: float | timedelta | None = None,
        failure_threshold: int | None = None,
        recovery_threshold: int | None = None,
    ) -> MonitorConfig:
        """Validate and build; raise ``ConfigError`` (``ScheduleError`` for a schedule) naming the setting."""
        if isinstance(schedule, Schedule):
            if timezone is not None and validate_timezone(timezone) != schedule.timezone:
                schedule = parse_schedule(schedule.text, timezone)
        else:
            schedule = parse_schedule(schedule, "UTC" if timezone is None else timezone)
        return cls(
            schedule=schedule,
            checkin_margin=None if checkin_margin is None else _duration("checkin_margin", checkin_margin),
            max_runtime=None if max_runtime is None else _duration("max_runtime", max_runtime),
            failure_threshold=(
                None if failure_threshold is None else _threshold("failure_threshold", failure_threshold)
            ),
            recovery_threshold=(
                None if recovery_threshold is None else _threshold("recovery_threshold", recovery_threshold)
            ),
        )

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> MonitorConfig:
        """A whole configuration from a ``monitor_config`` on the wire (see ``parse_monitor_config``).

        Raises ``ConfigError`` when it is invalid or has no schedule.
        """
        fields = parse_monitor_config(data)
        schedule = fields.get("schedule")
        if schedule is None:
            raise ScheduleError("the monitor configuration has no schedule")
        return cls(
            schedule=schedule,
            checkin_margin=fields.get("checkin_margin"),
            max_runtime=fields.get("max_runtime"),
            failure_threshold=fields.get("failure_threshold"),
            recovery_threshold=fields.get("recovery_threshold"),
        )

    def to_wire(self) -> dict[str, Any]:
        """The ``monitor_config`` of an opswatch check-in record (see ``opswatch.crons``)."""
        wire: dict[str, Any] = {"schedule": self.schedule.text, "timezone": self.schedule.timezone}
        if self.checkin_margin is not None:
            wire["checkin_margin"] = _minutes(self.checkin_margin)
        if self.max_runtime is not None:
            wire["max_runtime"] = _minutes(self.max_runtime)
        if self.failure_threshold is not None:
            wire["failure_issue_threshold"] = self.failure_threshold
        if self.recovery_threshold is not None:
            wire["recovery_threshold"] = self.recovery_threshold
        return wire

    def to_sentry_monitor_config(self) -> dict[str, Any]:
        """The ``monitor_config`` for ``sentry_sdk.crons.capture_checkin``.

        Sentry counts in whole minutes: sub-minute margins, runtimes and intervals are rounded up.
        """
        config: dict[str, Any] = {"schedule": self.schedule.to_sentry(), "timezone": self.schedule.timezone}
        if self.checkin_margin is not None:
            config["checkin_margin"] = _sentry_minutes(self.checkin_margin)
        if self.max_runtime is not None:
            config["max_runtime"] = _sentry_minutes(self.max_runtime)
        if self.failure_threshold is not None:
            config["failure_issue_threshold"] = self.failure_threshold
        if self.recovery_threshold is not None:
            config["recovery_threshold"] = self.recovery_threshold
        return config


class MonitorConfigFields(TypedDict, total=False):
    """The keys a check-in's configuration carried, validated; absent keys were not sent."""

    schedule: Schedule
    timezone: str
    checkin_margin: timedelta
    max_runtime: timedelta
    failure_threshold: int
    recovery_threshold: int


def parse_monitor_config(data: Mapping[str, Any]) -> MonitorConfigFields:
    """Read a ``monitor_config`` from the wire: opswatch's shape or Sentry's; only the keys present.

    ``schedule`` may be our text (``"0 2 * * *"``, ``"@daily"``, ``"every 10 minutes"``), Sentry's object
    (``{"type": "crontab", "value": ...}`` / ``{"type": "interval", "value": 10, "unit": "minute"}``) or
    Sentry's older ``schedule_type`` + ``schedule`` pair. Margins and runtimes are minutes; a margin of 0
    means Sentry's minimum, 1 minute. ``failure_issue_threshold`` and ``failure_threshold`` are the same
    key. Keys that are ``None`` or unknown are ignored. Raises ``ConfigError`` naming the bad key; when the
    schedule is present, it is parsed in the timezone sent (UTC if none), and ``timezone`` is set too.
    """
    if not isinstance(data, Mapping):
        raise ConfigError("monitor_config", f"expected an object, got {type(data).__name__}")
    fields: MonitorConfigFields = {}
    timezone = data.get("timezone")
    if timezone is not None:
        if not isinstance(timezone, str):
            raise ScheduleError(f"expected an IANA timezone name, got {timezone!r}", "timezone")
        fields["timezone"] = validate_timezone(timezone)
    raw = data.get("schedule")
    if raw is not None:
        text = _schedule_text(raw, data.get("schedule_type"))
        fields["schedule"] = parse_schedule(text, timezone or "UTC")
        fields.setdefault("timezone", fields["schedule"].timezone)
    margin = data.get("checkin_margin")
    if margin is not None:
        if isinstance(margin, int | float) and not isinstance(margin, bool) and margin == 0:
            margin = 1
        fields["checkin_margin"] = _duration("checkin_margin", margin)
    runtime = data.get("max_runtime")
    if runtime is not None:
        fields["max_runtime"] = _duration("max_runtime", runtime)
    failure = data.get("failure_issue_threshold", data.get("failure_threshold"))
    if failure is not None:
        fields["failure_threshold"] = _threshold("failure_threshold", failure)
    recovery = data.get("recovery_threshold")
    if recovery is not None:
        fields["recovery_threshold"] = _threshold("recovery_threshold", recovery)
    return fields


def _schedule_text(raw: Any, schedule_type: Any) -> str:
    """Sentry's schedule shapes -> our schedule text."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping):
        kind, value, unit = raw.get("type"), raw.get("value"), raw.get("unit")
    elif isinstance(raw, list | tuple) and len(raw) == 2:
        kind, (value, unit) = schedule_type or "interval", raw
    else:
        raise ScheduleError(f"expected a crontab string or a schedule object, got {raw!r}")
    if kind == "crontab" and isinstance(value, str):
        return value
    if kind == "interval":
        if isinstance(value, bool) or not isinstance(value, int) or unit not in _SENTRY_UNITS:
            raise ScheduleError(
                f"an interval schedule needs a whole 'value' and a 'unit' out of {', '.join(_SENTRY_UNITS)}, "
                f"got {raw!r}"
            )
        return f"every {value} {unit}"
    raise ScheduleError(f"unknown schedule type {kind!r} (expected 'crontab' or 'interval') in {raw!r}")
