"""The rule clock: a background thread that evaluates the rules every interval and sends what is due.

It ticks every second (or every interval, if that is shorter). A tick evaluates every rule when the
interval has passed since the last round, the first tick at once (after downtime that is the one
catch-up evaluation), then logs follow-ups (repeats, announcements after a silence, every 15 s at most)
and drains the notification log, so ``group_wait`` is kept to about a second whatever the interval.
Hourly it prunes what is older than the retention (``store.prune``). ``run_once(now)``
does one tick by hand (tests, ``now`` injected). A tick that fails is logged and the clock carries on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ...log import get_logger
from .notify import Dispatcher, DrainReport
from .service import RoundReport, RuleService
from .store import prune

_log = get_logger("opswatch.server.rules")


class RuleClock:
    """``start()``/``stop()`` for ``ctx.background``; ``run_once`` for one tick by hand."""

    def __init__(
        self,
        service: RuleService,
        dispatcher: Dispatcher,
        *,
        interval: float = 60.0,
        now: Callable[[], float] | None = None,
        retention_days: int = 30,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.service = service
        self.dispatcher = dispatcher
        self.interval = interval
        self.now = now or service.now
        self.tick = min(1.0, interval)
        self.next_round: float | None = None
        #: Follow-ups (repeats, announcements after a silence) are logged this often, not every tick.
        self.follow_up_every = min(interval, 15.0)
        self.next_follow_up: float | None = None
        #: Old notifications and state are pruned hourly, keeping ``retention_days``.
        self.retention = retention_days * 86_400.0
        self.next_prune: float | None = None
        self.failures = 0
        #: Called before each round (``catalog.RuleCatalog.refresh``: rules changed by another server).
        self.before_round: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: float | None = None) -> tuple[RoundReport | None, DrainReport]:
        """One tick at ``now``: a round if one is due, then follow-ups and one drain."""
        when = self.now() if now is None else now
        report = None
        if self.next_round is None or when >= self.next_round:
            for hook in self.before_round:
                try:
                    hook()
                except Exception as err:  # the round runs with the rules it has
                    _log.error("the rules could not be refreshed before a round", None, err)
            report = self.service.run_once(when)
            self.next_round = when + self.interval
        if self.next_follow_up is None or when >= self.next_follow_up:
            self.dispatcher.follow_up(when)
            self.next_follow_up = when + self.follow_up_every
        if self.next_prune is None or when >= self.next_prune:
            self.next_prune = when + 3600.0
            try:
                prune(self.dispatcher.engine, self.service.rules, when - self.retention)
                self.dispatcher.prune(when - self.retention)
            except Exception as err:
                _log.error("old rule state could not be pruned; will retry", None, err)
        return report, self.dispatcher.drain(when)

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        thread = threading.Thread(target=self._run, name="opswatch-rule-clock", daemon=True)
        thread.start()
        self._thread = thread  # only once started: a ``stop`` from another thread can always join it

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current tick; a last drain sends what is due."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        self._thread = None
        self.dispatcher.drain(self.now())

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception as err:
                self.failures += 1
                _log.error("the rule clock tick failed", error=err)
            self._stop.wait(max(0.0, self.tick - (time.monotonic() - started)))
