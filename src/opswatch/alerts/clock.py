"""Time for the delivery worker, behind a small seam so tests can drive it.

The worker asks the clock what time it is (``monotonic`` for waits, ``time`` for what messages say) and
waits with ``sleep(seconds, wake)``, which returns early when ``wake`` is set (new work arrived). The
system clock waits for real; ``opswatch.alerts.testing.ManualClock`` waits until a test moves it.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the notifier needs from time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def time(self) -> float:
        """Seconds since the epoch (for "since 12:00:01 UTC")."""
        ...

    def sleep(self, seconds: float | None, wake: threading.Event) -> None:
        """Wait ``seconds`` (None: until woken) or until ``wake`` is set, whichever comes first."""
        ...


class SystemClock:
    """Real time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float | None, wake: threading.Event) -> None:
        wake.wait(seconds)
