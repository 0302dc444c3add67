"""The notifier: alert delivery that never blocks its caller. Shared by the SDK and the server.

Model: callers ``send()`` (or ``submit()``) into a bounded queue and return at once; one background
thread, named ``opswatch-alerts…`` (the stdlib bridge ignores threads named ``opswatch…``), owns
everything else, so none of the state below needs a lock:

1. *Repeats*: each request has a key (route + fingerprint). Inside the repeat interval a repeat is
   counted, not sent; the next message for that key says "N more since …" (``dedupe.Deduper``).
2. *Lanes*: each channel has an outbox. A token bucket paces it (about one message per second, short
   bursts allowed). When more is waiting than the pace allows, everything waiting is folded into one
   summary message; a long wait (rate limit, retries) folds what piles up behind it, so memory stays
   bounded by the outbox size whatever the endpoint does.
3. *Retries*: connection errors, timeouts and 5xx are retried with exponential backoff and jitter, up
   to ``RetryPolicy.max_attempts``. A 429 waits for ``Retry-After`` and is retried for as long as it
   takes (never dropped for being rate limited). ``invalid_blocks`` gets one text-only retry. Permanent
   answers fail the message; those that say the channel is broken (revoked, archived, not found) mark
   the channel failed with ``last_error``; that is reported once through the ``opswatch.alerts`` logger.

What is dropped (full queue, shutdown deadline) is counted in ``stats()``. ``flush(timeout)`` waits
until nothing is pending; ``close(timeout)`` sends what is left without pacing (folded into one message
per channel, pending repeat counts included) and stops the thread. Live notifiers are flushed at exit.

The server builds one with its channels and calls ``send(alert)``::

    notifier = Notifier([SlackChannel(url), WebhookChannel(url2, secret=secret)])
    notifier.send(SlackNotifications.cron_job_failed(job_name="nightly", error="missed"))
"""

from __future__ import annotations

import atexit
import collections
import os
import random
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from ._report import report_internal, say
from .channels.base import Channel, DeliveryError
from .clock import Clock, SystemClock
from .dedupe import Deduper
from .jobs import Delivery, Job, Request, State
from .lanes import Item, Lane
from .limits import (
    BURST,
    DEFAULT_RETRY_AFTER,
    MAX_OUTBOX,
    MAX_RETRY_AFTER,
    PACE_SECONDS,
    QUEUE_SIZE,
    REPEAT_INTERVAL,
)
from .message import Alert, fold
from .pacing import RetryPolicy, TokenBucket


class Notifier:
    """Delivers alerts to channels from one background thread (see the module docs for the model).

    ``channels``: the channels, a list or a ``{name: channel}`` mapping (names must be unique).
    ``queue_size``: how many queued jobs before ``send`` drops (and counts). ``repeat_interval``: seconds
    within which a repeat is counted, not sent (0 turns repeats off). ``pace``/``burst``: per-channel
    message pace. ``retry``: the backoff policy. ``clock``: time (tests use a manual clock).
    """

    def __init__(
        self,
        channels: Sequence[Channel] | Mapping[str, Channel],
        *,
        queue_size: int = QUEUE_SIZE,
        repeat_interval: float = REPEAT_INTERVAL,
        pace: float = PACE_SECONDS,
        burst: int = BURST,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        name: str = "opswatch-alerts",
    ) -> None:
        items = list(channels.items()) if isinstance(channels, Mapping) else [(c.name, c) for c in channels]
        self.channels: dict[str, Channel] = {}
        for channel_name, channel in items:
            if channel_name in self.channels:
                raise ValueError(f"two channels are named {channel_name!r}")
            self.channels[channel_name] = channel
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.clock: Clock = clock or SystemClock()
        self.retry = retry or RetryPolicy()
        self.name = name if name.startswith("opswatch") else f"opswatch-{name}"
        self._queue_size = queue_size
        now = self.clock.monotonic()
        self._lanes = {n: Lane(n, c, TokenBucket(pace, burst, now)) for n, c in self.channels.items()}
        self._dedupe = Deduper(repeat_interval)
        self._rng = random.Random()
        self._incoming: collections.deque[Job] = collections.deque()
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None
        self._closing = False
        self._closed = False
        self._close_deadline: float | None = None
        self._counts: collections.Counter[str] = collections.Counter()
        self._reported_drops = 0
        self._reported_channels: set[str] = set()
        _live.add(self)

    # -- the caller's side (any thread, never blocks) ------------------------------------------------

    def send(self, alert: Alert, *, channels: Sequence[str] | None = None, route: str = "send") -> Delivery:
        """Queue ``alert`` for ``channels`` (default: all) and return its ``Delivery`` at once.

        Repeats are recognised by ``route`` and the alert's fingerprint. Never raises for delivery
        problems; unknown channel names raise ``ValueError`` (a programming error).
        """
        names = tuple(channels) if channels is not None else tuple(self.channels)
        for channel_name in names:
            if channel_name not in self.channels:
                raise ValueError(f"unknown channel {channel_name!r} (known: {', '.join(self.channels)})")
        delivery = Delivery(alert, names)
        if names:
            request = Request(alert, f"{route}:{alert.fingerprint}", names, delivery)
            if not self.submit(request):
                delivery.finish(
                    "dropped", "the alert queue is full" if not self._closed else "notifier closed"
                )
        return delivery

    def submit(self, job: Job) -> bool:
        """Queue a job (anything with ``expand() -> requests``); False when it was dropped. Microseconds."""
        incoming = self._incoming
        if self._closed or len(incoming) >= self._queue_size:
            with self._cond:
                self._counts["dropped"] += 1
            return False
        incoming.append(job)
        if self._thread is None:
            try:
                self._start()
            except RuntimeError:  # no new threads at interpreter shutdown: the job stays for close()
                return True
        if not self._wake.is_set():
            self._wake.set()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued, waiting or in flight; True when that happened within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._idle():
                if self._thread is None or not self._thread.is_alive():
                    return not self._incoming
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.05 if left is None else min(left, 0.05))
        return True

    def close(self, timeout: float | None = 5.0) -> None:
        """Send what is pending (folded, unpaced, within ``timeout``), then stop the thread."""
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._closed = True
            if timeout is not None:
                self._close_deadline = self.clock.monotonic() + timeout
        thread = self._thread
        if thread is None:
            if not self._incoming:
                self._close_channels()
                return
            try:  # queued but never started (after fork, or at interpreter shutdown): deliver them now
                self._start()
                thread = self._thread
            except RuntimeError:
                self._thread = None
                self._run()  # no threads at shutdown: deliver in this thread, within the deadline
                return
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def stats(self) -> dict[str, Any]:
        """Counters and channel status: sent, failed, dropped, suppressed, folded, occurrences, ..."""
        with self._cond:
            counts = dict(self._counts)
        names = ("sent", "failed", "dropped", "folded", "rate_limited", "retries", "internal_errors")
        return {
            **{k: counts.get(k, 0) for k in names},
            "suppressed": self._dedupe.suppressed,
            "occurrences": counts.get("occurrences", 0),
            "queued": len(self._incoming),
            "channels": {
                n: {**lane.channel.status.as_dict(), "pending": lane.pending}
                for n, lane in self._lanes.items()
            },
        }

    # -- the worker ------------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread = thread
        try:
            thread.start()
        except RuntimeError:
            self._thread = None
            raise

    def _idle(self) -> bool:
        return (
            not self._incoming and not self._busy and all(lane.pending == 0 for lane in self._lanes.values())
        )

    def _run(self) -> None:
        try:
            while self._step():
                pass
        finally:
            self._close_channels()
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _step(self) -> bool:
        """One round: take new work, emit due reminders, make at most one attempt per ready lane, then
        sleep until the next thing is due. Returns False when the worker should stop."""
        clock = self.clock
        self._wake.clear()
        with self._cond:
            self._busy = True
        jobs: list[Job] = []
        incoming = self._incoming
        while incoming:  # popleft one by one: callers append without the lock
            jobs.append(incoming.popleft())
        wake_at: float | None = None
        try:
            for job in jobs:
                try:
                    self._accept(job)
                except Exception as err:  # one bad job (a record that breaks a template) is skipped
                    self._count("internal_errors")
                    report_internal(err)
            now, wall = clock.monotonic(), clock.time()
            closing = self._closing
            for reminder in self._dedupe.due(now, wall, everything=closing):
                self._route(Request(reminder.alert, reminder.key, reminder.channels), now)
            self._report()
            attempted = False
            wake_at = self._dedupe.next_due()
            for lane in self._lanes.values():
                ready = self._ready_at(lane, now, closing)
                if ready is None:
                    continue
                if closing and self._close_deadline is not None and ready > self._close_deadline:
                    self._abandon(lane, "dropped", "shutdown came before the retry")
                elif ready <= now:
                    self._attempt(lane, closing)
                    attempted = True
                else:
                    wake_at = ready if wake_at is None else min(wake_at, ready)
        except Exception as err:  # a bug here must not kill the thread: count it, pause, carry on
            self._count("internal_errors")
            report_internal(err)
            attempted = False
            wake_at = clock.monotonic() + 1.0
        with self._cond:
            self._busy = False
            self._cond.notify_all()
        if self._closing:
            past = self._close_deadline is not None and clock.monotonic() >= self._close_deadline
            if past:
                for lane in self._lanes.values():
                    self._abandon(lane, "dropped", "shutdown deadline passed")
            if past or (not self._incoming and all(lane.pending == 0 for lane in self._lanes.values())):
                return False
        if attempted or self._incoming:
            return True
        now = clock.monotonic()
        clock.sleep(None if wake_at is None else max(0.0, wake_at - now), self._wake)
        return True

    def _accept(self, job: Job) -> None:
        clock = self.clock
        for request in job.expand():
            now, wall = clock.monotonic(), clock.time()
            self._count("occurrences", request.alert.occurrences)
            alert = self._dedupe.offer(request.key, request.alert, request.channels, now, wall)
            if alert is None:
                if request.delivery is not None:
                    request.delivery.finish("suppressed")
                continue
            request.alert = alert
            self._route(request, now)

    def _route(self, request: Request, now: float) -> None:
        names = request.channels if request.channels is not None else tuple(self._lanes)
        for channel_name in names:
            lane = self._lanes.get(channel_name)
            if lane is None:
                continue
            deliveries = [request.delivery] if request.delivery is not None else []
            if lane.channel.status.failed:
                for delivery in deliveries:
                    delivery.settle(channel_name, "failed", lane.channel.status.last_error)
                self._count("failed")
                continue
            lane.outbox.append(Item(request.alert, deliveries))
            if len(lane.outbox) > MAX_OUTBOX:
                self._fold(lane)

    def _fold(self, lane: Lane) -> None:
        items = list(lane.outbox)
        lane.outbox.clear()
        alert = fold([item.alert for item in items], now=self.clock.time())
        self._count("folded", len(items))
        lane.outbox.append(Item(alert, [d for item in items for d in item.deliveries]))

    def _ready_at(self, lane: Lane, now: float, closing: bool) -> float | None:
        if lane.channel.status.failed:
            if lane.pending:
                self._abandon(lane, "failed", lane.channel.status.last_error)
            return None
        if lane.head is not None:
            ready = lane.retry_at
        elif lane.outbox:
            ready = now
        else:
            return None
        return ready if closing else max(ready, lane.bucket.ready_at(now))

    def _attempt(self, lane: Lane, closing: bool) -> None:
        clock = self.clock
        now = clock.monotonic()
        if lane.head is None:
            if len(lane.outbox) > 1 and (closing or lane.bucket.available(now) < 2):
                self._fold(lane)
            lane.head = lane.outbox.popleft()
        item = lane.head
        lane.bucket.take(now)
        item.attempts += 1
        if item.attempts > 1:
            self._count("retries")
        channel_name = lane.name
        try:
            lane.channel.deliver(item.alert, text_only=item.text_only)
        except DeliveryError as err:
            self._failed_attempt(lane, item, err)
            return
        except Exception as err:  # a broken channel: fail the message, not the worker
            self._finish_head(lane, "failed", f"{type(err).__name__}: {err}")
            return
        self._count("sent")
        lane.head = None
        for delivery in item.deliveries:
            delivery.settle(channel_name, "delivered")

    def _failed_attempt(self, lane: Lane, item: Item, err: DeliveryError) -> None:
        now = self.clock.monotonic()
        if err.text_only and not item.text_only:
            item.text_only = True  # one more try without blocks
            lane.retry_at = now
            return
        if err.disable:
            self._finish_head(lane, "failed", err.reason)
            self._abandon(lane, "failed", err.reason)
            return
        if err.permanent:
            self._finish_head(lane, "failed", err.reason)
            return
        if err.rate_limited:
            self._count("rate_limited")
            item.attempts -= 1  # waiting for a rate limit is not a failed attempt
            wait = err.retry_after if err.retry_after is not None else DEFAULT_RETRY_AFTER
            lane.retry_at = now + min(MAX_RETRY_AFTER, wait)
            return
        if item.attempts >= self.retry.max_attempts:
            self._finish_head(lane, "failed", f"{err.reason} (gave up after {item.attempts} attempts)")
            return
        lane.retry_at = now + self.retry.backoff(item.attempts, self._rng)

    def _count(self, name: str, n: int = 1) -> None:
        with self._cond:  # callers' threads count drops too
            self._counts[name] += n

    def _finish_head(self, lane: Lane, state: State, error: str | None) -> None:
        item, lane.head = lane.head, None
        if item is None:
            return
        self._count("failed" if state == "failed" else "dropped")
        for delivery in item.deliveries:
            delivery.settle(lane.name, state, error)

    def _abandon(self, lane: Lane, state: State, error: str | None) -> None:
        """Settle everything waiting on ``lane`` with ``state`` (channel failed, or shutdown)."""
        self._finish_head(lane, state, error)
        while lane.outbox:
            item = lane.outbox.popleft()
            self._count("failed" if state == "failed" else "dropped")
            for delivery in item.deliveries:
                delivery.settle(lane.name, state, error)

    def _report(self) -> None:
        """Say once, through the logger, that a channel failed or that alerts were dropped."""
        for channel_name, lane in self._lanes.items():
            status = lane.channel.status
            if status.failed and channel_name not in self._reported_channels:
                self._reported_channels.add(channel_name)
                say(
                    "error",
                    "Alert channel failed; its alerts are not delivered until it is reconfigured",
                    operation="alerts.channel.failed",
                    channel=channel_name,
                    channel_kind=lane.channel.kind,
                    last_error=status.last_error,
                )
        with self._cond:
            dropped = self._counts["dropped"]
        if dropped and not self._reported_drops:
            self._reported_drops = dropped
            say(
                "warn",
                "Alerts dropped: the alert queue is full (the webhook is slow or down); more are counted",
                operation="alerts.dropped",
                dropped=dropped,
            )

    def _close_channels(self) -> None:
        for channel in self.channels.values():
            try:
                channel.close()
            except Exception as err:
                report_internal(err)

    def _after_fork(self) -> None:
        # The worker thread did not survive fork(); the parent's queue is the parent's to send.
        self._thread = None
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._busy = False
        self._incoming.clear()
        for lane in self._lanes.values():
            lane.outbox.clear()
            lane.head = None

    def __repr__(self) -> str:
        return f"<Notifier {list(self.channels)}>"


_live: weakref.WeakSet[Notifier] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for notifier in list(_live):
        notifier._after_fork()


def _close_all_at_exit(timeout: float = 5.0) -> None:
    """Flush every live notifier at exit, within ``timeout`` seconds in all."""
    deadline = time.monotonic() + timeout
    for notifier in list(_live):
        notifier.close(max(0.0, deadline - time.monotonic()))


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all_at_exit)
