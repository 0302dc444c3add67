"""The cron clock: a background thread that ticks the monitor service every second.

Each tick asks the service for the monitors due at ``now`` (a heap of deadlines, so the cost is the due
monitors, not all of them), lets the engine mark misses and timeouts, and then drains the outbox (state
changes to the event store, notifications to the notifier). ``now`` is injectable; tests and benchmarks
call ``run_once(now)`` directly instead of starting the thread. A tick that fails is logged and the
clock carries on: one bad monitor must not stop the others from being judged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ...log import get_logger
from .outbox import DrainReport, Outbox
from .service import MonitorService, TickReport

_log = get_logger("opswatch.server.monitors")


class CronClock:
    """``start()``/``stop()`` for ``ctx.background``; ``run_once`` for one tick by hand."""

    def __init__(
        self,
        service: MonitorService,
        outbox: Outbox | None = None,
        *,
        now: Callable[[], float] | None = None,
        interval: float = 1.0,
        prune_every: float = 3600.0,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.service = service
        self.outbox = outbox
        self.now = now or service.now
        self.interval = interval
        #: Seconds a tick may spend judging before it hands the rest to the next tick.
        self.budget = 0.5 * interval
        #: Seconds between prunings of old run history (``MonitorService.prune``).
        self.prune_every = prune_every
        self._pruned_at: float | None = None
        self.ticks = 0
        self.failures = 0
        self.last_tick: TickReport | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: float | None = None) -> tuple[TickReport, DrainReport | None]:
        """One tick at ``now`` (default: the clock's time source), then one outbox round.

        A tick spends at most about ``budget`` seconds; when monitors are left due (``report.more``,
        after the server was down or in a mass outage) the thread ticks again at once.
        """
        when = self.now() if now is None else now
        report = self.service.tick(when, budget=self.budget)
        self.ticks += 1
        self.last_tick = report
        drained = self.outbox.drain(when) if self.outbox is not None else None
        if self._pruned_at is None or when - self._pruned_at >= self.prune_every:
            self._pruned_at = when
            self.service.prune(when)
        return report, drained

    def wake(self) -> None:
        """Tick (and drain) now rather than at the next second: a check-in produced a change."""
        self._wake.set()

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        thread = threading.Thread(target=self._run, name="opswatch-cron-clock", daemon=True)
        thread.start()
        self._thread = thread  # only once started: a ``stop`` from another thread can always join it

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after its current tick; a last outbox round sends what is pending."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        self._thread = None
        if self.outbox is not None:
            self.outbox.drain(self.now())

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            more = False
            try:
                report, _drained = self.run_once()
                more = report.more
            except Exception as err:
                self.failures += 1
                _log.error("the cron clock tick failed", error=err)
            if not more:
                self._wake.wait(max(0.0, self.interval - (time.monotonic() - started)))
            self._wake.clear()
