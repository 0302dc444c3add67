"""A bounded log of refused check-ins, so a refusal is visible after the fact (API, CLI, server log).

Check-ins reach the monitors after they are stored, so a refusal (an unknown monitor without a
configuration to create it from, a bad configuration) cannot always be answered to the sender. The log
keeps one line per (project, slug) with the latest reason, a count and when it was last seen; the first
refusal of each is also logged as a warning. ``opswatch crons list`` and ``GET /api/0/monitors`` show it.
"""

from __future__ import annotations

import dataclasses
import threading

from ...log import get_logger

_log = get_logger("opswatch.server.monitors")

#: Slugs remembered (the least recently refused is forgotten first).
MAX_REJECTIONS = 200


@dataclasses.dataclass(slots=True)
class Rejection:
    """Check-ins refused for one (project, slug): the latest reason, how many, when last."""

    project_id: int
    slug: str
    reason: str
    count: int
    last_seen: float


class RejectionLog:
    """Thread-safe, bounded to ``limit`` slugs."""

    def __init__(self, limit: int = MAX_REJECTIONS) -> None:
        self.limit = limit
        self.total = 0
        self._items: dict[tuple[int, str], Rejection] = {}
        self._lock = threading.Lock()

    def add(self, project_id: int, slug: str, reason: str, now: float) -> None:
        """Record one refusal."""
        key = (project_id, slug)
        with self._lock:
            self.total += 1
            seen = self._items.get(key)
            if seen is not None:
                seen.count += 1
                seen.reason = reason
                seen.last_seen = now
                return
            if len(self._items) >= self.limit:
                oldest = min(self._items.values(), key=lambda r: r.last_seen)
                del self._items[(oldest.project_id, oldest.slug)]
            self._items[key] = Rejection(project_id, slug, reason, 1, now)
        _log.warn("cron check-in refused", {"monitor_slug": slug, "project_id": project_id, "reason": reason})

    def forget(self, project_id: int, slug: str) -> None:
        """Drop the line of a slug that now exists."""
        with self._lock:
            self._items.pop((project_id, slug), None)

    def items(self) -> list[Rejection]:
        """Every line, most recently refused first."""
        with self._lock:
            return sorted(self._items.values(), key=lambda r: -r.last_seen)
