"""Throttling of failed logins and admin tokens, per client address.

Each client address has a token bucket of ``AUTH_FAILURE_BURST`` failures that refills one every
``AUTH_FAILURE_REFILL_SECONDS``. A failure takes a token; an address with no token left is answered 429
with ``Retry-After`` before its token is even compared, so guessing costs time whatever the guess.
Successes cost nothing. At most ``AUTH_THROTTLE_MAX_CLIENTS`` addresses are remembered (the least
recently seen is forgotten first), so the table's memory is bounded too. Behind a proxy every client has
the proxy's address; the throttle then holds them together, which errs on the side of refusing.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import limits


class AuthThrottle:
    """Failed authentications per client (see the module docstring). Thread-safe."""

    def __init__(
        self,
        *,
        burst: int = limits.AUTH_FAILURE_BURST,
        refill_seconds: float = limits.AUTH_FAILURE_REFILL_SECONDS,
        max_clients: int = limits.AUTH_THROTTLE_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, client: str, now: float) -> float:
        found = self._buckets.get(client)
        if found is None:
            return float(self.burst)
        tokens, since = found
        return min(float(self.burst), tokens + (now - since) / self.refill_seconds)

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may try now."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens(client, now)
        if tokens >= 1:
            return None
        return max(1, math.ceil((1 - tokens) * self.refill_seconds))

    def failed(self, client: str) -> None:
        """Count a failed attempt by ``client``."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens(client, now)
            self._buckets[client] = (max(tokens - 1, 0.0), now)
            self._buckets.move_to_end(client)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)


def throttle_for(extras: dict[str, Any]) -> AuthThrottle:
    """The server's throttle, kept in the context's ``extras`` (made on first use)."""
    throttle = extras.get("auth_throttle")
    if not isinstance(throttle, AuthThrottle):
        throttle = extras.setdefault("auth_throttle", AuthThrottle())
    return throttle


def client_address(request: Any) -> str:
    """The address a request came from (``unknown`` when the server does not know it)."""
    client = getattr(request, "client", None)
    return client.host if client is not None and client.host else "unknown"
