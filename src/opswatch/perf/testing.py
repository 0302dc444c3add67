"""A clock for tests: drive performance thresholds without sleeping.

::

    from opswatch.perf.testing import manual_clock

    with manual_clock() as clock, opswatch.testing.capture_logs() as logs:
        track_query("donations.findMany", lambda: clock.advance(ms=2500))
    assert logs[-1]["operation"] == "performance.critical.db.donations.findMany"
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from . import _config


class ManualClock:
    """A clock that only moves when told; call it for the time in seconds."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, *, ms: float = 0.0, seconds: float = 0.0) -> None:
        """Move time forward by ``ms`` milliseconds plus ``seconds`` seconds."""
        self.now += seconds + ms / 1000.0


@contextlib.contextmanager
def manual_clock(start: float = 1000.0) -> Iterator[ManualClock]:
    """Measure with a ``ManualClock`` inside the block; the previous configuration comes back after."""
    clock = ManualClock(start)
    previous = _config.CURRENT
    _config.configure(clock=clock)
    try:
        yield clock
    finally:
        _config.CURRENT = previous
