"""Repeats: alerts with the same key (route + fingerprint) inside the repeat interval are counted, not sent.

The first alert of a key is sent. Until ``interval`` seconds have passed, further ones only add to a
count. The first one after the interval is sent with "N more since <time of the last announcement>";
if none comes, the worker asks ``due()`` when the interval ends and sends a reminder (the latest counted
alert saying "N more since ..."), so a count is never lost. Memory is bounded: at most ``max_keys``
keys, least recently seen first out (an evicted key with a count still gets its reminder).
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import OrderedDict

from .limits import MAX_DEDUPE_KEYS, REPEAT_INTERVAL
from .message import Alert


@dataclasses.dataclass
class _Entry:
    sent_at: float
    sent_wall: float
    channels: tuple[str, ...] | None
    suppressed: int = 0
    latest: Alert | None = None


@dataclasses.dataclass(frozen=True)
class Reminder:
    """A count that must be announced: the latest counted alert, carrying the count."""

    key: str
    alert: Alert
    channels: tuple[str, ...] | None


class Deduper:
    """Counts repeats per key. Times are monotonic seconds (``now``) and epoch seconds (``wall``)."""

    def __init__(self, interval: float = REPEAT_INTERVAL, max_keys: int = MAX_DEDUPE_KEYS) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._deadlines: list[tuple[float, str]] = []
        self._evicted: list[Reminder] = []
        #: Alerts counted instead of sent, in all.
        self.suppressed = 0

    def offer(
        self, key: str, alert: Alert, channels: tuple[str, ...] | None, now: float, wall: float
    ) -> Alert | None:
        """The alert to send now (maybe with "N more since"), or None when it was counted instead."""
        if self.interval <= 0:
            return alert
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(sent_at=now, sent_wall=wall, channels=channels)
            if len(self._entries) > self.max_keys:
                self._evict()
            return alert
        self._entries.move_to_end(key)
        if now < entry.sent_at + self.interval:
            if entry.suppressed == 0:
                heapq.heappush(self._deadlines, (entry.sent_at + self.interval, key))
            entry.suppressed += alert.occurrences
            entry.latest = alert
            self.suppressed += alert.occurrences
            return None
        more, since = entry.suppressed, entry.sent_wall
        entry.sent_at, entry.sent_wall, entry.suppressed, entry.latest = now, wall, 0, None
        return alert.with_repeats(more, since) if more else alert

    def _evict(self) -> None:
        key, entry = self._entries.popitem(last=False)
        reminder = self._reminder(key, entry)
        if reminder is not None:
            self._evicted.append(reminder)

    def _reminder(self, key: str, entry: _Entry) -> Reminder | None:
        if entry.suppressed <= 0 or entry.latest is None:
            return None
        # the reminder stands for the counted alerts only: "199 more since ...", 199 occurrences
        alert = dataclasses.replace(
            entry.latest, more=entry.suppressed, since=entry.sent_wall, occurrences=entry.suppressed
        )
        return Reminder(key, alert, entry.channels)

    def due(self, now: float, wall: float, everything: bool = False) -> list[Reminder]:
        """Reminders whose interval has ended (all pending counts when ``everything``, e.g. at shutdown)."""
        out, self._evicted = self._evicted, []
        while self._deadlines and (everything or self._deadlines[0][0] <= now):
            _, key = heapq.heappop(self._deadlines)
            entry = self._entries.get(key)
            if entry is None or entry.suppressed == 0:
                continue
            if not everything and now < entry.sent_at + self.interval:  # reset since; wait for the new end
                heapq.heappush(self._deadlines, (entry.sent_at + self.interval, key))
                continue
            reminder = self._reminder(key, entry)
            entry.sent_at, entry.sent_wall, entry.suppressed, entry.latest = now, wall, 0, None
            if reminder is not None:
                out.append(reminder)
        return out

    def next_due(self) -> float | None:
        """When the next reminder may be due (monotonic seconds), or None."""
        if self._evicted:
            return float("-inf")
        return self._deadlines[0][0] if self._deadlines else None

    def __len__(self) -> int:
        return len(self._entries)
