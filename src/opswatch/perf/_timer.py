"""``start_timer(name)``: manual timing with laps, for work that is not one function call.

``end()`` writes one record for the total, by the thresholds of the timer's kind (``api`` unless told),
with every lap in ``laps``: ``[{"name", "duration_ms" (since the previous lap), "elapsed_ms" (since the
start)}]``. A timer ends once; later ``end()`` calls return the same total and write nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from . import _config
from ._report import report


class Timer:
    """A running timer. ``lap(name)`` marks a step; ``end()`` logs the total and the laps."""

    __slots__ = ("_clock", "_ended", "_last", "_start", "critical_ms", "fields", "kind", "laps", "name",
                 "slow_ms")

    def __init__(
        self,
        name: str,
        kind: str = "api",
        fields: Mapping[str, Any] | None = None,
        slow_ms: float | None = None,
        critical_ms: float | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.fields = dict(fields) if fields else {}
        self.slow_ms = slow_ms
        self.critical_ms = critical_ms
        self._clock = _config.CURRENT.clock
        self._start = self._last = self._clock()
        self._ended: float | None = None
        #: The laps so far, as they will be logged.
        self.laps: list[dict[str, Any]] = []

    def lap(self, name: str) -> float:
        """Mark the end of a step; return its duration in milliseconds (since the previous lap)."""
        now = self._clock()
        ms = (now - self._last) * 1000.0
        self._last = now
        self.laps.append(
            {"name": name, "duration_ms": round(ms, 3), "elapsed_ms": round((now - self._start) * 1000.0, 3)}
        )
        return ms

    def elapsed_ms(self) -> float:
        """Milliseconds since the start (the total, once ended)."""
        if self._ended is not None:
            return self._ended
        return (self._clock() - self._start) * 1000.0

    def end(self, error: BaseException | None = None) -> float:
        """Log the total and every lap (once); return the total in milliseconds."""
        if self._ended is not None:
            return self._ended
        seconds = self._clock() - self._start
        self._ended = seconds * 1000.0
        fields = {**self.fields, "laps": list(self.laps)} if self.laps else self.fields
        report(self.kind, self.name, seconds, fields, error, self.slow_ms, self.critical_ms)
        return self._ended

    def __enter__(self) -> Timer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end(exc)

    def __repr__(self) -> str:
        state = "ended" if self._ended is not None else "running"
        return f"<opswatch.perf.Timer {self.name!r} {state}, {len(self.laps)} laps>"
