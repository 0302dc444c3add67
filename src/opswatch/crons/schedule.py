"""Monitor schedules: parse and validate them, and compute expected run times.

A schedule is one of

- a 5-field crontab (``minute hour day-of-month month day-of-week``), evaluated by cronsim the way Debian
  cron does it: day-of-month and day-of-week are ORed unless one of them starts with ``*``; ``L``, ``LW``,
  ``5L`` and ``MON#2`` work; in a timezone, a fixed-time job whose time falls in a spring-forward gap
  runs at the first valid minute after it, and one whose time repeats in a fall-back overlap runs once;
- a nickname: ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly``, ``@yearly``
  (``@annually``);
- an interval for heartbeats: ``every 30 seconds``, ``every 10 minutes``, ``every 2 hours``, ``every day``,
  ``every 2 weeks``, ``every 3 months``. An interval has no fixed grid: the next run is expected one
  interval after the time you count from (the last check-in).

``parse_schedule(text, timezone)`` raises ``ScheduleError`` with a message a person can act on for
anything else: 6- or 7-field expressions, Jenkins ``H``, Quartz ``W`` and ``?``, ``@reboot``, unknown
timezones, and expressions that can never fire (``* * 31 2 *``).

Times in and out are aware datetimes; results are always in UTC. The server's clock asks for next times
very often, so a ``Schedule`` is shared between everyone who parses the same text and zone, and keeps a
window of consecutive run times: asking again anywhere inside the window is a binary search, not a
cronsim walk.
"""

from __future__ import annotations

import bisect
import calendar
import functools
import re
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ..config import ConfigError

__all__ = [
    "NICKNAMES",
    "Schedule",
    "ScheduleError",
    "parse_schedule",
    "validate_timezone",
]

#: Crontab nicknames and what they stand for.
NICKNAMES: Final[Mapping[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

#: Interval units: spelling -> (canonical unit, seconds per unit or 0 for calendar months).
_UNITS: Final[Mapping[str, tuple[str, int]]] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), ("second", 1)),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), ("minute", 60)),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), ("hour", 3600)),
    **dict.fromkeys(("d", "day", "days"), ("day", 86400)),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), ("week", 604800)),
    **dict.fromkeys(("mo", "month", "months"), ("month", 0)),
    **dict.fromkeys(("y", "yr", "year", "years"), ("year", 0)),
}

#: Longest fixed interval (a year and a day) and the most calendar months an interval may span.
MAX_INTERVAL_SECONDS: Final = 366 * 86400
MAX_INTERVAL_MONTHS: Final = 120

#: How many consecutive run times a crontab schedule remembers at most.
_WINDOW_SLOTS: Final = 1024
_UNSET: Final = float("-inf")  # an empty window: no ts satisfies floor <= ts < -inf

_INTERVAL = re.compile(r"every\s+(?:([0-9]+)\s*)?([a-z]+)", re.IGNORECASE)
_FIELD_NAMES: Final = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_RANGES: Final = ("0-59", "0-23", "1-31", "1-12 or JAN-DEC", "0-7 or SUN-SAT")
_UTC_NAMES: Final = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z"})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_VALIDATION_START: Final = datetime(2000, 1, 1, tzinfo=UTC).timestamp()


class ScheduleError(ConfigError):
    """A schedule or timezone that opswatch cannot monitor; the message says why and what would work."""

    def __init__(self, problem: str, setting: str = "schedule") -> None:
        super().__init__(setting, problem)


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA timezone this machine knows; raise ``ScheduleError`` otherwise."""
    _zone(name)
    return name


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> tzinfo:
    if not isinstance(name, str) or not name.strip():
        raise ScheduleError(f"expected an IANA timezone name like 'Europe/Berlin', got {name!r}", "timezone")
    if name in _UTC_NAMES:
        return UTC  # cronsim skips its DST handling for this exact object: faster, same answers
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(
            f"unknown timezone {name!r}: expected an IANA name such as 'UTC', 'America/New_York' "
            "or 'Europe/Berlin'",
            "timezone",
        ) from None


def parse_schedule(text: str, timezone: str = "UTC") -> Schedule:
    """Parse a schedule; equal inputs return the same shared ``Schedule`` object.

    Raises ``ScheduleError`` (a ``ConfigError`` and so a ``ValueError``) naming what is wrong.
    """
    if not isinstance(text, str):
        raise ScheduleError(f"expected a crontab, a nickname or 'every N units', got {type(text).__name__}")
    if not isinstance(timezone, str):
        raise ScheduleError(f"expected an IANA timezone name, got {type(timezone).__name__}", "timezone")
    return _parse(" ".join(text.split()), timezone)


@functools.lru_cache(maxsize=4096)
def _parse(text: str, timezone: str) -> Schedule:
    zone = _zone(timezone)
    if not text:
        raise ScheduleError("the schedule is empty: expected a crontab such as '0 2 * * *'")
    if text.lower().startswith("every"):
        value, unit = _parse_interval(text)
        spelled = f"every {value} {unit}{'s' if value != 1 else ''}"
        return Schedule(spelled, timezone, zone, None, (value, unit))
    if text.startswith("@"):
        nickname = text.lower()
        if nickname not in NICKNAMES:
            raise ScheduleError(
                f"unknown nickname {text!r}: expected one of {', '.join(sorted(NICKNAMES))}"
                + (" (@reboot has no time to monitor)" if nickname == "@reboot" else "")
            )
        return Schedule(nickname, timezone, zone, NICKNAMES[nickname], None)
    _check_crontab(text.split())
    schedule = Schedule(text, timezone, zone, text, None)
    try:
        schedule._raw_next(_VALIDATION_START)
    except _NeverFires:
        raise ScheduleError(f"{text!r} never fires: no date matches all of its fields") from None
    return schedule


def _parse_interval(text: str) -> tuple[int, str]:
    match = _INTERVAL.fullmatch(text)
    unit_info = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit_info is None:
        raise ScheduleError(
            f"cannot read the interval {text!r}: expected 'every N seconds|minutes|hours|days|weeks|months', "
            "for example 'every 10 minutes'"
        )
    value = int(match.group(1)) if match.group(1) else 1
    unit, seconds = unit_info
    if unit == "year":
        value, unit = value * 12, "month"
    if value < 1:
        raise ScheduleError(f"the interval in {text!r} must be at least 1")
    if seconds and value * seconds > MAX_INTERVAL_SECONDS:
        raise ScheduleError(f"the interval in {text!r} is longer than a year; use a crontab instead")
    if unit == "month" and value > MAX_INTERVAL_MONTHS:
        raise ScheduleError(f"the interval in {text!r} is longer than {MAX_INTERVAL_MONTHS} months")
    return value, unit


def _check_crontab(words: list[str]) -> None:
    """Reject what cronsim would accept but cron does not, and explain what cronsim rejects."""
    if len(words) == 6:
        raise ScheduleError(
            f"{' '.join(words)!r} has 6 fields; opswatch takes 5 (minute hour day-of-month month "
            "day-of-week). Seconds are not supported in a crontab: use 'every 30 seconds' for a heartbeat"
        )
    if len(words) != 5:
        raise ScheduleError(
            f"{' '.join(words)!r} has {len(words)} fields; expected 5: minute hour day-of-month month "
            "day-of-week, for example '0 2 * * *'"
        )
    for index, field in enumerate(words):
        name = _FIELD_NAMES[index]
        for term in field.upper().split(","):
            if term == "?":
                raise ScheduleError(f"'?' in the {name} field is Quartz syntax; use '*' instead")
            if term.startswith("H") and (len(term) == 1 or term[1] in "(/"):
                raise ScheduleError(
                    f"'H' in the {name} field is a Jenkins hash, which cron does not have; "
                    "write the exact value"
                )
            if index == 2 and term.endswith("W") and term != "LW":
                raise ScheduleError(
                    f"'{term}' (nearest weekday) in the day-of-month field is not supported; "
                    "'LW' (last weekday of the month) is"
                )
    try:
        CronSim(" ".join(words), datetime(2000, 1, 1))
    except CronSimError:
        pass
    else:
        return
    for index, field in enumerate(words):  # find the field that is wrong on its own
        probe = ["*"] * 5
        probe[index] = field
        try:
            CronSim(" ".join(probe), datetime(2000, 1, 1))
        except CronSimError:
            raise ScheduleError(
                f"bad {_FIELD_NAMES[index]} field {field!r} in {' '.join(words)!r} "
                f"(allowed: {_FIELD_RANGES[index]}, with ',', '-', '/' and '*')"
            ) from None
    raise ScheduleError(f"{' '.join(words)!r} never fires: no month has that day (for example February 31)")


class _NeverFires(Exception):
    pass


class Schedule:
    """A parsed schedule in a timezone. Immutable to its users; shared and safe to use from many threads.

    ``text`` is the schedule as written (whitespace normalized; nicknames lower-cased; intervals spelled
    ``every N units``); ``crontab`` the 5-field expression (nicknames expanded) or ``None`` for an
    interval; ``interval`` is ``(value, unit)`` for intervals, unit one of second, minute, hour, day,
    week, month.
    """

    __slots__ = ("_lock", "_window", "crontab", "interval", "text", "timezone", "zone")

    def __init__(
        self,
        text: str,
        timezone: str,
        zone: tzinfo,
        crontab: str | None,
        interval: tuple[int, str] | None,
    ) -> None:
        self.text = text
        self.timezone = timezone
        self.zone = zone
        self.crontab = crontab
        self.interval = interval
        # (floor, consecutive runs in epoch seconds) of a crontab: see "the window of run times".
        self._window: tuple[float, list[float]] = (_UNSET, [_UNSET])
        self._lock = threading.Lock()

    # -- identity ------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"Schedule({self.text!r}, timezone={self.timezone!r})"

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return (self.text, self.timezone) == (other.text, other.timezone)

    def __hash__(self) -> int:
        return hash((self.text, self.timezone))

    @property
    def kind(self) -> Literal["crontab", "interval"]:
        """``crontab`` (nicknames included) or ``interval``."""
        return "interval" if self.interval is not None else "crontab"

    @property
    def is_interval(self) -> bool:
        """True for ``every N units``: runs are expected one interval after the last one."""
        return self.interval is not None

    @property
    def period(self) -> timedelta | None:
        """The length of a fixed interval; ``None`` for crontabs and calendar-month intervals."""
        if self.interval is None:
            return None
        value, unit = self.interval
        seconds = _UNITS[unit][1]
        return timedelta(seconds=value * seconds) if seconds else None

    def to_sentry(self) -> dict[str, Any]:
        """The ``schedule`` object of a Sentry ``monitor_config``.

        Sentry's smallest interval unit is the minute: a seconds interval is rounded up to whole minutes
        (at least one), which a job checking in more often still satisfies.
        """
        if self.interval is None:
            return {"type": "crontab", "value": self.crontab}
        value, unit = self.interval
        if unit == "second":
            return {"type": "interval", "value": max(1, -(-value // 60)), "unit": "minute"}
        return {"type": "interval", "value": value, "unit": unit}

    # -- run times -----------------------------------------------------------------------------------

    def next_after(self, moment: datetime) -> datetime:
        """The first run strictly after ``moment`` (aware), in UTC.

        For an interval, ``moment`` is the time to count from (usually the last check-in) and the answer is
        one interval later.
        """
        return _from_ts(self.next_timestamp_after(_to_ts(moment)))

    def last_at_or_before(self, moment: datetime) -> datetime | None:
        """The latest run at or before ``moment`` (aware), in UTC; ``None`` if there is none.

        For an interval, this is one interval before ``moment``.
        """
        ts = self.last_timestamp_at_or_before(_to_ts(moment))
        return None if ts is None else _from_ts(ts)

    def previous_before(self, moment: datetime) -> datetime | None:
        """The latest run strictly before ``moment`` (aware), in UTC; ``None`` if there is none."""
        ts = self.last_timestamp_at_or_before(_to_ts(moment) - 1e-6)
        return None if ts is None else _from_ts(ts)

    def runs_between(self, start: datetime, end: datetime, limit: int = 1000) -> list[datetime]:
        """Runs ``r`` with ``start < r <= end``, oldest first, at most ``limit`` of them."""
        end_ts = _to_ts(end)
        result: list[datetime] = []
        ts = _to_ts(start)
        while len(result) < limit:
            ts = self.next_timestamp_after(ts)
            if ts > end_ts:
                break
            result.append(_from_ts(ts))
        return result

    def count_between(self, start: datetime, end: datetime, limit: int = 100_000) -> int:
        """How many runs fall in ``start < r <= end``, counting at most ``limit``."""
        start_ts, end_ts = _to_ts(start), _to_ts(end)
        if end_ts <= start_ts:
            return 0
        period = self.period
        if period is not None:
            return min(limit, int((end_ts - start_ts) // period.total_seconds()))
        count, ts = 0, start_ts
        while count < limit:
            ts = self.next_timestamp_after(ts)
            if ts > end_ts:
                break
            count += 1
        return count

    def iter_after(self, moment: datetime) -> Iterator[datetime]:
        """Every run strictly after ``moment``, endlessly, in UTC."""
        ts = _to_ts(moment)
        while True:
            ts = self.next_timestamp_after(ts)
            yield _from_ts(ts)

    # The same in epoch seconds, for callers (the server's clock) that keep times as numbers.

    def next_timestamp_after(self, ts: float) -> float:
        """``next_after`` in epoch seconds."""
        if self.interval is not None:
            return _add_interval(ts, self.interval, 1)
        floor, slots = self._window
        if floor <= ts < slots[-1]:
            return slots[bisect.bisect_right(slots, ts)]
        return self._next_missed(ts)

    def last_timestamp_at_or_before(self, ts: float) -> float | None:
        """``last_at_or_before`` in epoch seconds."""
        if self.interval is not None:
            return _add_interval(ts, self.interval, -1)
        _, slots = self._window
        if slots[0] <= ts < slots[-1]:
            return slots[bisect.bisect_right(slots, ts) - 1]
        with self._lock:
            last = self._raw_last(ts)
            if last is not None:
                self._window = (last, [last, self._raw_next(last)])
        return last

    # -- the window of run times ---------------------------------------------------------------------
    #
    # ``_window`` is ``(floor, slots)``: ``slots`` are consecutive runs, ascending, and no run falls
    # between ``floor`` and ``slots[0]``; so for any ``floor <= ts < slots[-1]`` the next run is a binary
    # search away. Readers take the tuple without locking: the list only grows at its end, and a moved
    # window is a new tuple. Time mostly moves forward, so a miss usually extends the window by one run;
    # a jump elsewhere starts a new window. Either way a miss costs at most two cronsim walks.

    def _next_missed(self, ts: float) -> float:
        with self._lock:
            floor, slots = self._window
            if floor <= ts < slots[-1]:  # another thread got here first
                return slots[bisect.bisect_right(slots, ts)]
            if floor <= ts and slots[-1] != _UNSET:
                following = self._raw_next(slots[-1])
                if ts < following:
                    slots.append(following)
                    if len(slots) > _WINDOW_SLOTS:
                        keep = _WINDOW_SLOTS // 2
                        self._window = (slots[-keep - 1], slots[-keep:])
                    return following
            result = self._raw_next(ts)
            self._window = (ts, [result])
            return result

    def _raw_last(self, ts: float) -> float | None:
        """The latest run at or before ``ts`` that the forward walk produces (the definition of a run)."""
        candidate = self._raw_reverse(ts)
        while candidate is not None:
            run = self._raw_next(candidate - 1)  # the forward run at or after the candidate
            if run <= ts:
                following = self._raw_next(run)
                while following <= ts:
                    run, following = following, self._raw_next(following)
                return run
            candidate = self._raw_reverse(candidate - 1)
        return None

    def _raw_next(self, ts: float) -> float:
        """The first run strictly after ``ts``, straight from cronsim (no window)."""
        assert self.crontab is not None
        start = datetime.fromtimestamp(ts, self.zone)
        runs = CronSim(self.crontab, start)
        try:
            result = next(runs).timestamp()
            # In a fall-back overlap cronsim works in local wall time and can answer with the first
            # occurrence of a time we are already past; the run after it is the real next one.
            while result <= ts:
                result = next(runs).timestamp()
        except StopIteration:
            raise _NeverFires from None
        return result

    def _raw_reverse(self, ts: float) -> float | None:
        """A run at or before ``ts`` by cronsim's reverse walk (close to, not always, the latest)."""
        assert self.crontab is not None
        start = datetime.fromtimestamp(int(ts) + 1, self.zone)
        runs = CronSim(self.crontab, start, reverse=True)
        try:
            result = next(runs).timestamp()
            while result > ts:
                result = next(runs).timestamp()
        except StopIteration:
            return None
        return result


def _to_ts(moment: datetime) -> float:
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: pass an aware one (for example datetime.now(UTC))")
    return moment.timestamp()


def _from_ts(ts: float) -> datetime:
    return _EPOCH + timedelta(seconds=ts)


def _add_interval(ts: float, interval: tuple[int, str], sign: int) -> float:
    value, unit = interval
    seconds = _UNITS[unit][1]
    if seconds:
        return ts + sign * value * seconds
    moment = _from_ts(ts)
    month0 = moment.year * 12 + moment.month - 1 + sign * value
    year, month = divmod(month0, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day).timestamp()
