"""The engine's view of a schedule: slots in epoch seconds, on top of the shared schedule math.

All crontab, nickname, interval and timezone rules live in ``opswatch.crons.schedule`` (one
implementation, shared with the client). This module only adapts a ``Schedule`` to the small
``engine.Slots`` protocol (``anchored``, ``period``, ``next_after``) and turns a ``ScheduleError`` into
``MonitorConfigError`` with the same words.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ...crons.schedule import Schedule, ScheduleError, parse_schedule
from .errors import MonitorConfigError


class ScheduleSlots:
    """A parsed schedule as the engine uses it; shared by every monitor with the same text and zone."""

    __slots__ = ("anchored", "next_after", "period", "schedule")

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.anchored: bool = schedule.is_interval
        period = schedule.period
        self.period: float | None = period.total_seconds() if period is not None else None
        self.next_after: Callable[[float], float] = schedule.next_timestamp_after


@functools.lru_cache(maxsize=4096)
def build_slots(text: str, timezone: str = "UTC") -> ScheduleSlots:
    """Slots for ``text`` in ``timezone``; raises ``MonitorConfigError`` naming the setting."""
    try:
        return ScheduleSlots(parse_schedule(text, timezone))
    except ScheduleError as err:
        raise MonitorConfigError(err.setting, err.problem) from None
