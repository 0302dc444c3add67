"""One batch at a time, for the server sink's worker thread: post it, read the answer, back off, spool.

``Delivery`` owns the transport, the backlog and the backoff clock. ``ship`` takes a fresh batch: it is
posted at once, unless older batches wait in the backlog or the server is in backoff, in which case it
joins them (at the back, so a returning server gets everything in order). ``replay_one`` posts the oldest
stored batch. What an answer means:

- 2xx: delivered; the per-record rejections of the answer are counted; the backoff is reset;
- connection error, timeout, 408, 429, 5xx: transient; the batch stays (or goes) in the backlog and the
  next try waits ``backoff_base * 2**n`` (capped, with jitter), or longer if ``Retry-After`` says so;
- 413: the batch is split in halves, each sent on its own (down to a single record);
- any other 4xx (and 3xx: redirects are not followed): refused for good, counted, printed once (a 401
  or 404 says the DSN's key or project is wrong).

Drops are counted here by reason (``queue_full``, ``spool_full``, ``unstorable``, ``closed``) under
``lock``: the first drop of an episode prints one line on stderr, and every post carries the drops the
server has not heard of yet in the ``X-Opswatch-Client-Report`` header (as Sentry SDKs send client
reports); a 2xx answer marks them reported, so the server's ``/metrics`` counts each drop once.

Only the worker thread posts. ``store`` is also called by application threads (a full queue spills its
oldest batch to the backlog) and by ``ServerSink.close`` when the worker is stuck in a request: it holds
``lock``, and a disk backlog ``put`` writes a file of its own.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import time
from collections.abc import Mapping

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
)

#: Why records are lost: the queue (and the spool with it) is full, the spool is full, the disk fails, or
#: the sink was closed already (a record logged after the exit flush).
DROP_REASONS = ("queue_full", "spool_full", "unstorable", "closed")


class Delivery:
    """Posts, retries and stores batches for one sink (see the module docstring).

    The body is gzipped NDJSON (``encode``/``decode``) and the answers are the native protocol's
    (``parse_answer``/``reason``); a subclass overrides these four for another protocol.
    """

    #: Whether posts carry the drops the server has not heard of (``X-Opswatch-Client-Report``).
    client_reports = True

    def __init__(
        self,
        owner: Sink,
        url: str,
        headers: Mapping[str, str],
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
        self.url = url
        self.headers = dict(headers)
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
        """Fresh counters, locks and backoff (at construction and in a forked child)."""
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(COUNTERS, 0)
        #: Records lost, by reason; ``reported`` is how many of them the server has heard of.
        self.drops = dict.fromkeys(DROP_REASONS, 0)
        self.reported = dict.fromkeys(DROP_REASONS, 0)
        #: True from the first drop until the sink announces the drops (re-arms the stderr line).
        self.dropping = False
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

    def decode(self, body: bytes) -> list[bytes] | None:
        """The lines of an encoded batch (to split it), or None when it cannot be read."""
        return _native.decode(body)

    def parse_answer(self, response: Response, count: int) -> _native.Answer:
        """What a 2xx (or a 400 listing rejections) says about a batch of ``count`` records."""
        return _native.parse_answer(response, count)

    def reason(self, response: Response | None) -> str:
        """A short reason for a failed answer."""
        return _native.reason(response)

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
        with self.lock:
            before = self.backlog.dropped
            try:
                self.backlog.put(body, count)
            except OSError as err:
                self.last_error = f"spool: {err}"
                failure: OSError | None = err
            else:
                failure = None
                self.counts["spooled"] += count
            lost = self.backlog.dropped - before
        if failure is not None:
            self.owner.report_failure(failure)
            self.drop("unstorable", count)
        if lost:
            self.drop("spool_full", lost)

    def drop(self, reason: str, count: int) -> None:
        """Count ``count`` records lost for ``reason``; the first drop of an episode prints one line."""
        with self.lock:
            self.drops[reason] += count
            self.owner.dropped += count
            first, self.dropping = not self.dropping, True
        if first:
            stderr(
                f"opswatch: dropping records ({_DROP_WHY[reason]}); each one is counted in opswatch.stats(),"
                " reported to the server, and makes flush() return False"
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
            parts = lines if lines is not None else self.decode(body)
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
            rejected = len(self.parse_answer(response, count).rejected) if response is not None else 0
            rejected = min(rejected, count)  # a 400 may list why each record was refused
            self.counts["rejected"] += rejected
            self.counts["refused"] += count - rejected
            self._warn_once(
                f"refused-{status}",
                f"opswatch: the server refused a batch of {count} records with HTTP {status}"
                f" ({self.reason(response)}){self.refusal_hint(status)}; such batches are dropped"
                " and counted, not retried, and flush() returns False",
            )
            return []
        self._back_off(_native.retry_after(response))
        return [(body, count)]

    def _post(self, body: bytes) -> tuple[_native.Outcome, Response | None]:
        transport = self._transport
        if transport is None:  # made here, in the worker: an SSL context costs milliseconds
            connect, read = self._timeouts
            transport = self._transport = HttpxTransport(connect_timeout=connect, timeout=read)
        headers, reporting = self._with_client_report()
        try:
            response = transport.send(Request(self.url, headers, body))
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
        if outcome == "ok" and reporting:
            with self.lock:
                for reason, count in reporting.items():
                    self.reported[reason] += count
        if outcome != "ok":
            self.counts["send_errors"] += 1
            self.last_error = f"HTTP {response.status}: {self.reason(response)}"
        return outcome, response

    def _with_client_report(self) -> tuple[dict[str, str], dict[str, int]]:
        """The request headers, with the drops the server has not heard of yet (and those drops)."""
        if not self.client_reports:
            return self.headers, {}
        with self.lock:
            unreported = {
                reason: self.drops[reason] - self.reported[reason]
                for reason in DROP_REASONS
                if self.drops[reason] > self.reported[reason]
            }
        if not unreported:
            return self.headers, unreported
        return {**self.headers, _native.CLIENT_REPORT_HEADER: _native.client_report(unreported)}, unreported

    def _settle(self, response: Response, count: int) -> None:
        """Count a 2xx answer and reset the backoff: the server is up."""
        self.attempt = 0
        self.next_attempt = 0.0
        answer = self.parse_answer(response, count)
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

    def refusal_hint(self, status: int) -> str:
        """What to check when the server refuses a batch with ``status``."""
        return _REFUSAL_HINTS.get(status, "")

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            stderr(text)


_DROP_WHY = {
    "queue_full": "the queue is full and the spool cannot take more",
    "spool_full": "the spool is full; the oldest undelivered records go first",
    "unstorable": "the spool cannot be written",
    "closed": "logged after opswatch closed at exit",
}

_REFUSAL_HINTS = {
    401: ": the DSN's key is not an ingest key of this project (check OPSWATCH_DSN)",
    403: ": the DSN's key may not send here (check OPSWATCH_DSN)",
    404: ": the server has no such project (check the project number at the end of OPSWATCH_DSN)",
}


def stderr(text: str) -> None:
    """Print one line on stderr, never through the logger (that could loop), never raising."""
    with contextlib.suppress(Exception):
        sys.stderr.write(text + "\n")
