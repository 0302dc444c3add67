"""Every monitor in memory: by id, by (project, slug), and a heap of deadlines for the clock.

A deadline is the next time the clock must look at a monitor (slot + margin, or a run's start + max
runtime). The heap holds ``(deadline, id)`` pairs; when a monitor's deadline changes a new pair is
pushed and the old one is left behind, recognised as stale when popped (its time no longer equals the
monitor's). So a tick pops only what is due: its cost is the due monitors, not all of them. When stale
pairs pile up past four per monitor the heap is rebuilt.

Not thread-safe on its own: the service's lock guards every call.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from .persist import Entry


class MonitorIndex:
    """Entries by id and slug, with the deadline heap."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._entries: dict[int, Entry] = {}
        self._by_slug: dict[tuple[int, str], int] = {}
        self._heap: list[tuple[float, int]] = []
        for entry in entries:
            self._entries[entry.id] = entry
            self._by_slug[(entry.project_id, entry.slug)] = entry.id
            if entry.deadline is not None:
                self._heap.append((entry.deadline, entry.id))
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, monitor_id: int) -> Entry | None:
        """The entry with this id, or None."""
        return self._entries.get(monitor_id)

    def find(self, project_id: int, slug: str) -> Entry | None:
        """The entry of (project, slug), or None."""
        monitor_id = self._by_slug.get((project_id, slug))
        return None if monitor_id is None else self._entries[monitor_id]

    def with_slug(self, slug: str) -> list[Entry]:
        """Entries with this slug, in any project."""
        return [self._entries[i] for (_project, s), i in self._by_slug.items() if s == slug]

    def all(self) -> list[Entry]:
        """Every entry."""
        return list(self._entries.values())

    def add(self, entry: Entry) -> None:
        """Add (or replace) an entry and put its deadline on the heap."""
        self._entries[entry.id] = entry
        self._by_slug[(entry.project_id, entry.slug)] = entry.id
        self.schedule(entry, force=True)

    def remove(self, entry: Entry) -> None:
        """Forget an entry; its heap pairs become stale."""
        if self._entries.get(entry.id) is entry:
            del self._entries[entry.id]
            self._by_slug.pop((entry.project_id, entry.slug), None)

    def holds(self, entry: Entry) -> bool:
        """True when ``entry`` is the current entry of its monitor."""
        return self._entries.get(entry.id) is entry

    def schedule(self, entry: Entry, force: bool = False) -> None:
        """Recompute the entry's deadline and push it when it changed (or when ``force``)."""
        before = entry.deadline
        deadline = entry.refresh_deadline()
        if deadline is not None and (force or deadline != before):
            heapq.heappush(self._heap, (deadline, entry.id))
        if len(self._heap) > 4 * len(self._entries) + 1024:
            self._heap = [(e.deadline, e.id) for e in self._entries.values() if e.deadline is not None]
            heapq.heapify(self._heap)

    def pop_due(self, now: float, limit: int) -> list[Entry]:
        """Up to ``limit`` entries due at ``now``, earliest first; their deadline is cleared (``schedule``
        them again after judging them)."""
        heap = self._heap
        due: list[Entry] = []
        while heap and heap[0][0] <= now and len(due) < limit:
            deadline, monitor_id = heapq.heappop(heap)
            entry = self._entries.get(monitor_id)
            if entry is None or entry.deadline != deadline:
                continue  # stale: the monitor moved on or was deleted
            entry.deadline = None
            due.append(entry)
        return due

    def earliest(self) -> float | None:
        """The earliest deadline on the heap (possibly a stale one, never a later one)."""
        return self._heap[0][0] if self._heap else None
