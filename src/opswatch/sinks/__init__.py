"""Sinks: where redacted records go. Each sink has its own level and never raises into the caller.

A sink gets the same record dict as every other sink and must not change it. ``write`` must be cheap:
sinks that do I/O over the network queue the record and send it from a background thread.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any

from ..record import Record


class Sink:
    """Base class for sinks: a level, failure accounting, and no-op flush/close."""

    name = "sink"

    def __init__(self, level: int) -> None:
        self.level = level
        #: How many writes failed; the first failure is reported on stderr, the rest only counted.
        self.failures = 0
        #: How many records were dropped (full queue, closed stream ...).
        self.dropped = 0
        self._reported = False
        self._lock = threading.Lock()

    def write(self, record: Record) -> None:
        """Take one record. Must not block on I/O and must not mutate ``record``."""
        raise NotImplementedError

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver what is pending, waiting at most ``timeout`` seconds; True when nothing is left."""
        return True

    def flush_at_stop(self, timeout: float | None = None) -> bool:
        """The process is stopping but the sink stays open: deliver what it can within ``timeout``."""
        return self.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush and release resources; the sink takes no more records afterwards."""
        self.flush(timeout)

    def report_failure(self, error: BaseException) -> None:
        """Count a failure; print the first one on stderr (never through the logger: that could loop)."""
        self.failures += 1
        if self._reported:
            return
        self._reported = True
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"opswatch: the {self.name} sink failed ({type(error).__name__}: {error}); "
                "further failures are counted, not printed\n"
            )

    def stats(self) -> dict[str, Any]:
        """Counters for diagnostics: failures and drops."""
        return {"failures": self.failures, "dropped": self.dropped}
