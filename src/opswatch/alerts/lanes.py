"""A lane: one channel's outbox, its pace, and the message being attempted (the notifier's worker).

Only the worker thread touches a lane; ``pending`` is also read by ``flush()`` (a length, safe to read).
"""

from __future__ import annotations

import collections

from .channels.base import Channel
from .jobs import Delivery
from .message import Alert
from .pacing import TokenBucket


class Item:
    """A message waiting on one lane, and the tickets it settles."""

    __slots__ = ("alert", "attempts", "deliveries", "text_only")

    def __init__(self, alert: Alert, deliveries: list[Delivery]) -> None:
        self.alert = alert
        self.deliveries = deliveries
        self.attempts = 0
        self.text_only = False


class Lane:
    """One channel's outbox, pace and retry state."""

    def __init__(self, name: str, channel: Channel, bucket: TokenBucket) -> None:
        self.name = name
        self.channel = channel
        self.bucket = bucket
        self.outbox: collections.deque[Item] = collections.deque()
        self.head: Item | None = None
        self.retry_at = 0.0

    @property
    def pending(self) -> int:
        """Messages waiting on this lane, the one being attempted included."""
        return len(self.outbox) + (self.head is not None)
