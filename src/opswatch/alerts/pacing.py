"""Pacing and retry timing: a token bucket per webhook, and exponential backoff with jitter."""

from __future__ import annotations

import dataclasses
import random

from .limits import BACKOFF_INITIAL, BACKOFF_MAX, BURST, MAX_ATTEMPTS, PACE_SECONDS


class TokenBucket:
    """``burst`` messages at once, then one per ``pace`` seconds. Times are the caller's monotonic clock."""

    def __init__(self, pace: float = PACE_SECONDS, burst: int = BURST, now: float = 0.0) -> None:
        if pace < 0 or burst < 1:
            raise ValueError("pace must be >= 0 and burst >= 1")
        self.pace = pace
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        if self.pace == 0:
            self.tokens = float(self.burst)
        elif now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) / self.pace)
        self.updated = max(self.updated, now)

    def available(self, now: float) -> float:
        """Tokens available at ``now``."""
        self._refill(now)
        return self.tokens

    def ready_at(self, now: float) -> float:
        """When the next token is there (``now`` when one is already)."""
        self._refill(now)
        if self.tokens >= 1:
            return now
        return now + (1 - self.tokens) * self.pace

    def take(self, now: float) -> None:
        """Use one token (the count may go below zero when a send is forced, e.g. at shutdown)."""
        self._refill(now)
        self.tokens -= 1


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried: ``max_attempts`` in all, waiting
    ``min(maximum, initial * 2**(attempt-1))`` scaled by a random factor in [0.5, 1] (jitter)."""

    max_attempts: int = MAX_ATTEMPTS
    initial: float = BACKOFF_INITIAL
    maximum: float = BACKOFF_MAX

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial < 0 or self.maximum < self.initial:
            raise ValueError("RetryPolicy needs max_attempts >= 1 and 0 <= initial <= maximum")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
        base = min(self.maximum, self.initial * 2.0 ** max(0, attempt - 1))
        return base * (0.5 + 0.5 * (rng or random).random())
