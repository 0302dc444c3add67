"""The issues subsystem's two moving parts inside the server: the ingest hook and the sweeper thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .notify import IssueNotices
from .service import IssueService, IssueSettings

_log = logging.getLogger("opswatch.server.issues")

#: How often the sweeper also forgets event mappings past the event retention, in seconds.
PRUNE_INTERVAL = 3600.0


class IssueHook:
    """``ctx.hooks`` entry: counts the error records of each durable batch into issues, writing a notice
    for each new and regressed issue in the same transaction, then sends the waiting notices through the
    notifier (which queues them; this never waits on I/O other than the state store)."""

    def __init__(
        self,
        service: IssueService,
        settings: IssueSettings,
        base_url: str,
        notices: IssueNotices | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.base_url = base_url
        self.notices = notices if notices is not None else IssueNotices(service.engine, base_url)
        self.kinds = tuple(
            kind
            for kind, on in (("new", settings.notify_new), ("regressed", settings.notify_regressed))
            if on
        )

    def __repr__(self) -> str:
        return "IssueHook()"

    def __call__(self, ctx: Any, records: list[dict[str, Any]]) -> None:
        changes = self.service.record(records, notify=self.kinds)
        if any(change.kind in self.kinds for change in changes):
            self.notices.drain(getattr(ctx, "notifier", None), self.service.now().timestamp())


class IssueSweeper:
    """``ctx.background`` entry: every ``sweep_interval`` seconds, auto-resolves quiet issues (when that
    is on) and ends timed ignores, and sends issue notices still waiting (a server killed before it sent
    them, a notifier that was down); hourly, forgets event mappings older than the event retention.
    ``start``/``stop`` are idempotent; a failing pass is logged and the next one runs on time."""

    def __init__(
        self,
        service: IssueService,
        settings: IssueSettings,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        notices: IssueNotices | None = None,
        notifier: Callable[[], Any] = lambda: None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.notices = notices
        self._notifier = notifier
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
        if self.notices is not None:
            self.notices.drain(self._notifier(), self.service.now().timestamp())
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
