"""One batch at a time, for the server sink's worker thread: post it, read the answer, back off, spool.

``Delivery`` owns the transport, the backlog and the backoff clock. ``ship`` takes a fresh batch: it is
posted at once, unless older batches wait in the backlog or the server is in backoff, in which case it
joins them (at the back, so a returning server gets everything in order). ``replay_one`` posts the oldest
stored batch. What an answer means:

- 2xx: delivered; the per-record rejections of the answer are counted; the backoff is reset;
- connection error, timeout, 408, 429, 5xx: transient; the batch stays (or goes) in the backlog and the
  next try waits ``backoff_base * 2**n`` (capped, with jitter), or longer if ``Retry-After`` says so;
- 413: the batch is split in halves, each sent on its own (down to a single record);
- any other 4xx (and 3xx: redirects are not followed): refused for good, counted, printed once.

Only the worker thread calls it, except ``store``, which ``ServerSink.close`` may also call when the
worker is stuck in a request; that is safe because a backlog ``put`` writes a file of its own.
"""

from __future__ import annotations

import contextlib
import random
import sys
import time

from ..config import Dsn
from . import Sink, _native
from ._spool import Backlog, MemoryBacklog
from ._transport import HttpxTransport, Request, Response, Transport, TransportError

COUNTERS = (
    "sent",
    "accepted",
    "duplicates",
    "rejected",
    "refused",
    "batches",
    "retries",
    "send_errors",
    "spooled",
    "dropped_spool_full",
    "dropped_unstorable",
)


class Delivery:
    """Posts, retries and stores batches for one sink (see the module docstring)."""

    def __init__(
        self,
        owner: Sink,
        dsn: Dsn,
        backlog: Backlog,
        transport: Transport | None,
        *,
        compresslevel: int,
        backoff_base: float,
        backoff_max: float,
        max_retry_after: float,
        retry_idle: float,
        connect_timeout: float,
        timeout: float,
    ) -> None:
        self.owner = owner
        self.url = _native.events_url(dsn)
        self.headers = _native.request_headers(dsn)
        self.backlog = backlog
        self.compresslevel = compresslevel
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.retry_idle = retry_idle
        self._timeouts = (connect_timeout, timeout)
        self._owns_transport = transport is None
        self._transport = transport
        self._warned: set[str] = set()
        self.reset()

    def reset(self) -> None:
        """Fresh counters and backoff (at construction and in a forked child)."""
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.last_error: str | None = None
        self.last_status: int | None = None
        self.attempt = 0
        self.next_attempt = 0.0
        #: The fresh batch being sent (body, count): ``close`` spools it when the worker is stuck.
        self.in_hand: tuple[bytes, int] | None = None

    def after_fork(self) -> None:
        """In a forked child: forget the parent's connections and in-memory batches, reset counters."""
        if self._owns_transport:
            self._transport = None  # the parent's pooled sockets are the parent's; never touch them
        if isinstance(self.backlog, MemoryBacklog):
            self.backlog = MemoryBacklog(self.backlog.max_bytes)  # the parent still delivers its own
        self.reset()

    # -- batches ---------------------------------------------------------------------------------------

    def encode(self, lines: list[bytes]) -> bytes:
        """Gzipped NDJSON for JSON lines."""
        return _native.encode(lines, self.compresslevel)

    def waiting(self, now: float) -> bool:
        """True while backing off after a failure."""
        return now < self.next_attempt

    def ship(self, lines: list[bytes]) -> None:
        """Send a fresh batch, or store it behind older ones while they wait."""
        body = self.encode(lines)
        self.in_hand = (body, len(lines))
        try:
            if self.waiting(time.monotonic()) or not self.backlog.empty():
                self.store(body, len(lines))
                return
            for left_body, count in self._deliver(body, len(lines), lines):
                self.store(left_body, count)
        finally:
            self.in_hand = None

    def replay_one(self) -> None:
        """Post the oldest stored batch; it leaves the backlog unless the failure was transient."""
        try:
            entry = self.backlog.take()
        except OSError as err:
            self.last_error = f"spool: {err}"
            self.owner.report_failure(err)
            self._back_off(None)
            return
        if entry is None:  # every stored batch is claimed by another process: look again later
            self.next_attempt = time.monotonic() + self.retry_idle
            return
        self.counts["retries"] += 1
        leftovers = self._deliver(entry.body, entry.count, None)
        if len(leftovers) == 1 and leftovers[0][0] is entry.body:
            self.backlog.back(entry)
            return
        self.backlog.done(entry)
        for body, count in leftovers:
            self.store(body, count)

    def store(self, body: bytes, count: int) -> None:
        """Put a batch in the backlog; count it dropped when even that fails (disk full ...)."""
        counts = self.counts
        before = self.backlog.dropped
        try:
            self.backlog.put(body, count)
        except OSError as err:
            counts["dropped_unstorable"] += count
            self.owner.dropped += count
            self.last_error = f"spool: {err}"
            self.owner.report_failure(err)
            return
        counts["spooled"] += count
        lost = self.backlog.dropped - before
        if lost:
            counts["dropped_spool_full"] += lost
            self.owner.dropped += lost
            self._warn_once(
                "spool-full",
                "opswatch: the spool is full; the oldest undelivered records are dropped and counted",
            )

    def close_transport(self) -> None:
        """Close the transport this object made (a given one belongs to whoever gave it)."""
        transport, self._transport = self._transport, None
        if transport is not None and self._owns_transport:
            try:
                transport.close()
            except Exception as err:
                self.owner.report_failure(err)

    # -- one request -----------------------------------------------------------------------------------

    def _deliver(self, body: bytes, count: int, lines: list[bytes] | None) -> list[tuple[bytes, int]]:
        """Post one batch (splitting it on 413); return the parts to retry later."""
        outcome, response = self._post(body)
        if outcome == "ok" and response is not None:
            self._settle(response, count)
            return []
        if outcome == "too_large" and count > 1:
            parts = lines if lines is not None else _native.decode(body)
            if parts is not None and len(parts) > 1:
                half = len(parts) // 2
                leftovers: list[tuple[bytes, int]] = []
                for part in (parts[:half], parts[half:]):
                    part_body = self.encode(part)
                    if leftovers:  # the first half must wait: so must the second, to keep the order
                        leftovers.append((part_body, len(part)))
                    else:
                        leftovers.extend(self._deliver(part_body, len(part), part))
                return leftovers
        if outcome in ("permanent", "too_large"):
            status = response.status if response is not None else 0
            rejected = len(_native.parse_answer(response, count).rejected) if response is not None else 0
            rejected = min(rejected, count)  # a 400 may list why each record was refused
            self.counts["rejected"] += rejected
            self.counts["refused"] += count - rejected
            self._warn_once(
                f"refused-{status}",
                f"opswatch: the server refused a batch of {count} records with HTTP {status}"
                f" ({_native.reason(response)}); such batches are dropped and counted, not retried",
            )
            return []
        self._back_off(_native.retry_after(response))
        return [(body, count)]

    def _post(self, body: bytes) -> tuple[_native.Outcome, Response | None]:
        transport = self._transport
        if transport is None:  # made here, in the worker: an SSL context costs milliseconds
            connect, read = self._timeouts
            transport = self._transport = HttpxTransport(connect_timeout=connect, timeout=read)
        try:
            response = transport.send(Request(self.url, self.headers, body))
        except TransportError as err:
            self.counts["send_errors"] += 1
            self.last_error = str(err)
            return "transient", None
        except Exception as err:  # a broken custom transport: treat like a failed connection
            self.counts["send_errors"] += 1
            self.last_error = f"{type(err).__name__}: {err}"
            self.owner.report_failure(err)
            return "transient", None
        self.last_status = response.status
        outcome = _native.classify(response.status)
        if outcome != "ok":
            self.counts["send_errors"] += 1
            self.last_error = f"HTTP {response.status}: {_native.reason(response)}"
        return outcome, response

    def _settle(self, response: Response, count: int) -> None:
        """Count a 2xx answer and reset the backoff: the server is up."""
        self.attempt = 0
        self.next_attempt = 0.0
        answer = _native.parse_answer(response, count)
        counts = self.counts
        counts["batches"] += 1
        counts["accepted"] += answer.accepted
        counts["duplicates"] += answer.duplicates
        counts["sent"] += answer.accepted + answer.duplicates
        if answer.rejected:
            counts["rejected"] += len(answer.rejected)
            index, why = answer.rejected[0]
            self._warn_once(
                "rejected",
                f"opswatch: the server rejected {len(answer.rejected)} of {count} records (first: index"
                f" {index}: {why}); further rejections are counted, not printed",
            )

    def _back_off(self, retry_after: float | None) -> None:
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** min(self.attempt, 30))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # "equal jitter": spread, never near zero
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        self.attempt += 1
        self.next_attempt = time.monotonic() + delay

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            stderr(text)


def stderr(text: str) -> None:
    """Print one line on stderr, never through the logger (that could loop), never raising."""
    with contextlib.suppress(Exception):
        sys.stderr.write(text + "\n")
