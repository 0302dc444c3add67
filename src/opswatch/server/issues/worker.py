"""The issues subsystem's two moving parts inside the server: the ingest hook and the sweeper thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .notify import announce
from .service import IssueService, IssueSettings

_log = logging.getLogger("opswatch.server.issues")

#: How often the sweeper also forgets event mappings past the event retention, in seconds.
PRUNE_INTERVAL = 3600.0


class IssueHook:
    """``ctx.hooks`` entry: counts the error records of each durable batch into issues, then hands the
    messages for new and regressed issues to the notifier (which queues them; this never waits on I/O
    other than the state store)."""

    def __init__(self, service: IssueService, settings: IssueSettings, base_url: str) -> None:
        self.service = service
        self.settings = settings
        self.base_url = base_url

    def __repr__(self) -> str:
        return "IssueHook()"

    def __call__(self, ctx: Any, records: list[dict[str, Any]]) -> None:
        changes = self.service.record(records)
        notifier = getattr(ctx, "notifier", None)
        if changes and notifier is not None:
            announce(
                notifier,
                changes,
                self.base_url,
                notify_new=self.settings.notify_new,
                notify_regressed=self.settings.notify_regressed,
            )


class IssueSweeper:
    """``ctx.background`` entry: every ``sweep_interval`` seconds, auto-resolves quiet issues (when that
    is on) and ends timed ignores; hourly, forgets event mappings older than the event retention.
    ``start``/``stop`` are idempotent; a failing pass is logged and the next one runs on time."""

    def __init__(
        self, service: IssueService, settings: IssueSettings, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.service = service
        self.settings = settings
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = -PRUNE_INTERVAL
        self.passes = 0

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="opswatch-issue-sweeper", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> dict[str, list[int]]:
        """One pass (also what the thread runs)."""
        result = self.service.sweep(self.settings)
        if self._monotonic() - self._last_prune >= PRUNE_INTERVAL:
            self.service.prune(self.settings.retention_days)
            self._last_prune = self._monotonic()
        self.passes += 1
        return result

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the state store may be busy; try again next time
                _log.exception("the issue sweeper failed a pass")
            self._stop.wait(self.settings.sweep_interval)
