"""Retention: a background worker that deletes events older than ``OPSWATCH_RETENTION_DAYS``.

``RetentionJob`` has the ``start()``/``stop()`` shape of ``ServerContext.background``; ``install(ctx)``
adds one for the server's store (list ``opswatch.server.store.retention:install`` in ``SUBSYSTEMS``).
The first run happens a minute after start, then every ``interval`` seconds. A failed run is logged and
tried again at the next interval; it never stops the server.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

from ...log import get_logger
from .. import limits

if TYPE_CHECKING:
    from ..context import ServerContext

_log = get_logger("opswatch.server.retention")


class _Deletes(Protocol):
    def delete_older_than(self, days: int) -> int: ...


class RetentionJob:
    """Runs ``store.delete_older_than(days)`` every ``interval`` seconds on its own thread."""

    def __init__(
        self,
        store: _Deletes,
        days: int,
        *,
        interval: float = limits.RETENTION_INTERVAL_SECONDS,
        first_delay: float = 60.0,
    ) -> None:
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValueError(f"retention days must be a whole number >= 1, got {days!r}")
        self.store = store
        self.days = days
        self.interval = interval
        self.first_delay = first_delay
        self.runs = 0
        self.deleted = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ran = threading.Condition()

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is None:
            self._stop.clear()  # startable again after a stop (a replica that leads again)
            self._thread = threading.Thread(target=self._run, name="opswatch-retention", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the worker; waits for a run in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def run_once(self) -> int:
        """Delete what is due now; return how many events went (also counted in ``deleted``)."""
        try:
            deleted = self.store.delete_older_than(self.days)
        except Exception as err:
            self.last_error = f"{type(err).__name__}: {err}"
            _log.error("retention failed", {"days": self.days}, err)
            deleted = 0
        else:
            self.last_error = None
            self.deleted += deleted
            if deleted:
                _log.info("retention deleted old events", {"days": self.days, "deleted": deleted})
        with self._ran:
            self.runs += 1
            self._ran.notify_all()
        return deleted

    def wait_for_runs(self, runs: int, timeout: float) -> bool:
        """Block until at least ``runs`` runs completed (for tests); False on timeout."""
        with self._ran:
            return self._ran.wait_for(lambda: self.runs >= runs, timeout)

    def _run(self) -> None:
        delay = self.first_delay
        while not self._stop.wait(delay):
            self.run_once()
            delay = self.interval


def install(ctx: ServerContext) -> None:
    """Add the retention worker for ``ctx.store`` with ``ctx.settings.retention_days``."""
    store: Any = ctx.store
    ctx.background.append(RetentionJob(store, ctx.settings.retention_days))
