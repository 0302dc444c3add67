"""The server sink: ships records to an opswatch server (``OPSWATCH_DSN``) from one background thread.

Promises:

- ``write`` appends to a bounded in-memory queue and never raises. While the queue has room it never
  blocks on I/O; when a burst fills it, the writing thread moves the oldest batch to the backlog (the
  disk spool) itself, a few milliseconds per ``batch_size`` records, rather than losing records. A record
  is dropped only when that fails too (``stats()["dropped_queue_full"]``); past the spool's bound the
  oldest spooled batches go (``dropped_spool_full``).
- Every drop is counted and shown: one stderr line when drops start, the counts in ``stats()`` and in
  the next request's client report (the server's ``/metrics``), an ``opswatch.dropped`` record once
  delivery resumes, and ``flush()`` returning False.
- One daemon thread, ``opswatch-transport``, takes batches from the queue (up to ``batch_size`` records or
  ``batch_bytes`` of JSON, at least every ``batch_interval`` seconds), serializes them with
  ``opswatch.record.to_json``, gzips them and posts NDJSON to ``<base>/api/<project>/events/`` with
  ``Authorization: Bearer <key>``.
- Connection errors, timeouts, 408, 429 and 5xx are transient: the batch goes to the backlog (a disk spool,
  or memory when no directory is usable) and is retried with exponential backoff and jitter, never
  sooner than a ``Retry-After`` asks. While older batches wait, new ones queue behind them on disk, so a
  returning server gets everything in order. A retry resends the same bytes, with the same
  ``event_id``s, so the server stores nothing twice.
- 413 splits the batch in halves and sends each; any other 4xx refuses that batch for good (counted,
  printed once on stderr). Per-record rejections in a 200 answer are counted too.
- The backlog is bounded (``max_spool_bytes``); past the bound the oldest batches are dropped and counted.
- After ``fork()`` the child starts with an empty queue, a fresh connection pool and its own thread (the
  parent keeps delivering what it queued); the spool directory is shared safely.
- ``flush(timeout)`` waits until everything written before it is delivered (or refused) and returns
  True only when it was, and nothing was lost (dropped, refused or rejected) since the previous flush;
  ``close(timeout)`` flushes what it can in time and spools the rest for the next run;
  ``flush_at_stop(timeout)`` does the same without closing (an ASGI lifespan shutdown, a SIGTERM the app
  handles itself) and from then on sends each record as soon as it is written.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from ..config import ConfigError, Dsn, Settings
from ..record import DEBUG, Record, format_millis, new_event_id, to_json
from . import Sink, _native
from ._delivery import Delivery, stderr
from ._spool import Backlog, DiskSpool, MemoryBacklog, default_spool_dir
from ._transport import Transport

THREAD_NAME = "opswatch-transport"

# -- defaults: every bound of the transport in one place, and why it has its value ---------------------

#: Most records in one batch. The server takes 10,000 (``MAX_EVENTS_PER_BATCH``); 1,000 typical records
#: are ~0.5 MB of JSON and ~10-60 KB gzipped: big enough to amortize a request, small enough to retry.
BATCH_SIZE = 1000
#: Most bytes of JSON in one batch (before gzip); one record over it still goes, alone. The server reads
#: up to 64 MiB decompressed per batch; records are at most 256 KiB each (``MAX_RECORD_BYTES``).
BATCH_BYTES = 1024 * 1024
#: Longest a record waits in the queue before its batch goes, in seconds (Sentry's log batcher: 5 s).
BATCH_INTERVAL = 1.0
#: Most records waiting in memory. Past it new records are dropped and counted: a dead or slow server
#: costs the app bounded memory, never a blocked call (typical records: a few MB in all).
MAX_QUEUE = 10_000
#: Most bytes of gzipped batches kept on disk while the server is unreachable (about a million typical
#: records); past it the oldest batches go first, counted.
MAX_SPOOL_BYTES = 64 * 1024 * 1024
#: First retry delay and the cap, in seconds; each failure doubles the delay, with jitter.
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
#: Longest ``Retry-After`` obeyed, in seconds: a server asking for an hour gets five minutes.
MAX_RETRY_AFTER = 300.0
#: gzip level. Measured on log records (benchmarks/bench_transport.py): level 1 costs ~0.5 µs per record
#: and level 6 ~1.9 µs, for bodies ~10% smaller. The CPU is the app's, the bandwidth is cheap: level 1.
COMPRESSLEVEL = 1
#: Seconds to connect, and to wait for each read of the answer; fixed, so a hung server costs a retry.
CONNECT_TIMEOUT = 5.0
TIMEOUT = 15.0


def from_settings(settings: Settings) -> ServerSink | None:
    """The server sink when ``settings.dsn`` is set (taking ``settings.server_level`` and above), else None.

    Raises ``ConfigError`` naming ``spool_dir`` when an explicit spool directory cannot be used.
    """
    if settings.dsn is None:
        return None
    return ServerSink(settings.dsn, level=settings.server_level, spool_dir=settings.spool_dir)


class BatchSink(Sink):
    """Batches, compresses and posts records from one background thread; see the module docstring.

    Subclasses say where batches go (``url`` and ``headers``) and how a batch is written (``_line`` per
    record, ``delivery_class`` for the body and the answers): ``ServerSink`` posts NDJSON to an opswatch
    server, ``opswatch.sinks.otlp.OtlpSink`` OTLP protobuf to a collector.
    """

    #: Encodes batches, posts them and reads the answers (``opswatch.sinks._delivery``).
    delivery_class: type[Delivery] = Delivery

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        spool_identity: str,
        *,
        level: int = DEBUG,
        spool_dir: str | None = None,
        spool: bool = True,
        transport: Transport | None = None,
        batch_size: int = BATCH_SIZE,
        batch_bytes: int = BATCH_BYTES,
        batch_interval: float = BATCH_INTERVAL,
        max_queue: int = MAX_QUEUE,
        max_spool_bytes: int = MAX_SPOOL_BYTES,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
        max_retry_after: float = MAX_RETRY_AFTER,
        compresslevel: int = COMPRESSLEVEL,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        """Ship records at ``level`` and above to ``url`` with ``headers``; start the background thread.

        ``spool_dir`` is where undelivered batches wait (default: a private directory under the temp
        dir named after ``spool_identity``; ``spool=False`` keeps them in memory only). ``transport``
        replaces the HTTP client (tests, proxies). The other arguments are the bounds in the defaults
        table above. Raises ``ConfigError`` naming the argument when one is out of range or the spool
        directory is unusable.
        """
        super().__init__(level)
        for setting, value in (
            ("batch_size", batch_size),
            ("batch_bytes", batch_bytes),
            ("max_queue", max_queue),
            ("max_spool_bytes", max_spool_bytes),
        ):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(setting, f"expected a positive whole number, got {value!r}")
        for setting, number in (
            ("batch_interval", batch_interval),
            ("backoff_base", backoff_base),
            ("backoff_max", backoff_max),
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
        ):
            if not isinstance(number, (int, float)) or number <= 0:
                raise ConfigError(setting, f"expected a positive number of seconds, got {number!r}")
        if not 0 <= compresslevel <= 9:
            raise ConfigError("compresslevel", f"expected 0 to 9, got {compresslevel!r}")
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.batch_interval = float(batch_interval)
        self.max_queue = max_queue
        self.spool_dir: str | None = None
        self._closed = False
        self._delivery = self.delivery_class(
            self,
            url,
            headers,
            self._open_backlog(spool, spool_dir, max_spool_bytes, spool_identity),
            transport,
            compresslevel=compresslevel,
            backoff_base=float(backoff_base),
            backoff_max=float(backoff_max),
            max_retry_after=float(max_retry_after),
            retry_idle=self.batch_interval,
            connect_timeout=float(connect_timeout),
            timeout=float(timeout),
        )
        self.url = self._delivery.url
        self._reset_runtime_state()
        _SINKS.add(self)
        self._ensure_worker()  # replays a spool left by an earlier run even before the first record

    def _open_backlog(self, spool: bool, directory: str | None, max_bytes: int, identity: str) -> Backlog:
        if not spool:
            return MemoryBacklog(max_bytes)
        if directory is not None:
            try:
                backlog = DiskSpool(directory, max_bytes)
            except OSError as err:
                raise ConfigError("spool_dir", f"cannot use {directory!r} as the spool: {err}") from None
            self.spool_dir = directory
            return backlog
        try:
            path = default_spool_dir(identity)
            backlog = DiskSpool(path, max_bytes)
        except OSError as err:
            stderr(f"opswatch: no disk spool ({err}); undelivered batches are kept in memory only")
            return MemoryBacklog(max_bytes)
        self.spool_dir = path
        return backlog

    def _reset_runtime_state(self) -> None:
        """Fresh queue, locks, thread and counters: at construction and in a forked child."""
        self._queue: collections.deque[Record] = collections.deque()
        self._wake = threading.Event()
        self._cond = threading.Condition(threading.Lock())
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._busy = False  # the worker holds a batch (fresh or claimed from the backlog) not yet settled
        self._flushers = 0
        self._stopping = False
        self._deadline = float("inf")
        self._last_take = time.monotonic()
        self._take_lock = threading.Lock()  # one taker at a time: the worker, a spilling writer, close
        self._hurry = False  # the process is stopping: ship each record as soon as it is written
        self._loss_mark = 0  # losses already reported by a flush that returned False
        self._announced = 0  # drops already announced in an ``opswatch.dropped`` record
        self.failures = 0
        self.dropped = 0

    # -- the application's side ------------------------------------------------------------------------

    def write(self, record: Record) -> None:
        """Queue ``record`` for the worker; when full, spill to the backlog, and drop if that fails."""
        queue = self._queue
        if self._closed:
            self._delivery.drop("closed", 1)
            return
        if len(queue) >= self.max_queue and not self._spill():
            self._delivery.drop("queue_full", 1)
            return
        queue.append(record)
        if self._thread is None:
            self._ensure_worker()
        if (self._hurry or len(queue) >= self.batch_size) and not self._wake.is_set():
            self._wake.set()

    def _spill(self) -> bool:
        """The queue is full: move its oldest batch to the backlog from this thread; False if that failed."""
        with self._take_lock:
            if len(self._queue) < self.max_queue:
                return True  # another thread made room meanwhile
            lines = self._take_lines()
        if lines:
            delivery = self._delivery
            failures = delivery.drops["unstorable"]
            delivery.store(delivery.encode(lines), len(lines))
            self._wake.set()
            return delivery.drops["unstorable"] == failures
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now and wait until it is delivered.

        False when ``timeout`` ran out first, or when records were lost (dropped, refused or rejected by
        the server) since the previous flush; ``stats()`` says how many and why.
        """
        return self._drain(timeout, stopping=False)

    def flush_at_stop(self, timeout: float | None = None) -> bool:
        """The process is about to stop: deliver within ``timeout``, spool what is left, keep running.

        From now on each record is sent as soon as it is written. Waits no longer than it takes to see that
        the server is down (the backlog then waits on disk for the next run). True when all was delivered.
        """
        self._hurry = True
        delivered = self._drain(timeout, stopping=True)
        if not delivered and not self._closed:
            self._abandon()  # the queue and a batch stuck in a request wait on disk, not in memory
        return delivered

    def _drain(self, timeout: float | None, *, stopping: bool) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        mark = self._loss_mark
        with self._cond:
            self._flushers += 1
        try:
            if self._thread is None and not self._closed:
                self._ensure_worker()  # a forked child that has not logged yet
            self._wake.set()
            with self._cond:
                while not self._idle():
                    if stopping and self._settled_on_disk():
                        return False
                    if self._thread is None or not self._thread.is_alive():
                        return False
                    left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                    if left <= 0:
                        return False
                    self._cond.wait(left)
            losses = self.losses()
            if losses > mark:
                self._loss_mark = max(self._loss_mark, losses)
                return False
            return True
        except Exception as err:  # flush is called from the app and from atexit: never raise
            self.report_failure(err)
            return False
        finally:
            with self._cond:
                self._flushers -= 1

    def losses(self) -> int:
        """Records lost so far: dropped at a bound, refused with a batch, rejected one by one."""
        counts = self._delivery.counts
        return self.dropped + counts["refused"] + counts["rejected"]

    def _settled_on_disk(self) -> bool:
        """Nothing queued or in hand, and the backlog waits out a backoff (call with ``_cond`` held)."""
        return not self._queue and not self._busy and self._delivery.waiting(time.monotonic())

    def close(self, timeout: float | None = None) -> None:
        """Deliver what can be delivered within ``timeout`` seconds, spool the rest, stop the thread."""
        with self._cond:
            closing = self._closed  # closed already: wait for that close's worker (SIGTERM during atexit)
            if not closing:
                self._closed = True
                self._stopping = True
                if timeout is not None:
                    self._deadline = time.monotonic() + timeout
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if closing:
            return
        if thread is not None and thread.is_alive():
            self._abandon()  # stuck in a slow request: keep its batch and the queue on disk
        elif thread is None:
            self._delivery.close_transport()
        _SINKS.discard(self)

    def stats(self) -> dict[str, Any]:
        """Counters: queued, sent, accepted, duplicates, rejected, refused, retries, spooled, drops ...

        ``dropped`` counts records lost to a bound (``dropped_queue_full``, ``dropped_spool_full``,
        ``dropped_unstorable``); ``refused`` and ``rejected`` count records the server said no to.
        """
        delivery = self._delivery
        try:
            batches, records, size = delivery.backlog.pending()
        except OSError:
            batches = records = size = -1
        return {
            "failures": self.failures,
            "dropped": self.dropped,
            **{f"dropped_{reason}": count for reason, count in delivery.drops.items()},
            **delivery.counts,
            "queued": len(self._queue),
            "backlog_batches": batches,
            "backlog_records": records,
            "backlog_bytes": size,
            "spool_dir": self.spool_dir,
            "last_status": delivery.last_status,
            "last_error": delivery.last_error,
        }

    # -- the worker ------------------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._closed:
                thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                thread.start()
                self._thread = thread

    def _idle(self) -> bool:
        """Nothing queued, nothing in hand, nothing waiting in the backlog (call with ``_cond`` held)."""
        if self._queue or self._busy:
            return False
        try:
            return self._delivery.backlog.empty()
        except OSError:
            return False

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            try:
                if self._cycle():
                    break
            except Exception as err:  # a bug here must not kill delivery for good
                with self._cond:
                    self._busy = False
                self.report_failure(err)
                self._wake.wait(0.1)
        self._delivery.close_transport()  # here, not in close(): a request may outlive close's timeout
        self._notify()

    def _cycle(self) -> bool:
        """Do one thing (ship a batch, replay one stored batch) or wait; True when the thread should end."""
        self._wake.clear()
        now = time.monotonic()
        queue = self._queue
        delivery = self._delivery
        if self._stopping and now >= self._deadline:
            self._store_queue()  # out of time: what is left waits on disk for the next run
            return True
        urgent = self._stopping or self._flushers > 0 or self._hurry
        due = urgent or len(queue) >= self.batch_size or now - self._last_take >= self.batch_interval
        backlog_empty = delivery.backlog.empty()
        if not backlog_empty and not delivery.waiting(now):
            # Oldest first: a fresh batch would only queue behind the backlog (and could push its oldest
            # batch past the bound). Busy even while replaying: a flush must not see the backlog
            # mid-claim and think it empty.
            self._busy_with(delivery.replay_one)
            self._announce_drops()
            return False
        if queue and due:
            self._last_take = now
            self._busy_with(self._ship_next)
            self._announce_drops()
            return False
        if self._stopping and not queue and (backlog_empty or delivery.waiting(now)):
            return True  # done, or the server is down and the backlog waits on disk for the next run
        self._notify()
        wait = self.batch_interval - (now - self._last_take) if queue else self.batch_interval
        if not backlog_empty:
            wait = min(wait, delivery.next_attempt - now)
        if self._stopping:
            wait = min(wait, self._deadline - now)
        self._wake.wait(max(wait, 0.001))
        return False

    def _ship_next(self) -> None:
        with self._take_lock:
            lines = self._take_lines()
        if lines:
            self._delivery.ship(lines)

    def _announce_drops(self) -> None:
        """Once a post succeeds after drops, queue one ``opswatch.dropped`` record with their count."""
        delivery = self._delivery
        status = delivery.last_status
        dropped = self.dropped
        if dropped <= self._announced or status is None or not 200 <= status < 300:
            return
        if len(self._queue) >= self.max_queue // 2:
            return  # still overloaded: one record when it is over, not one per batch
        with delivery.lock:
            drops = dict(delivery.drops)
            delivery.dropping = False  # the next drop starts a new episode, with its own stderr line
        count, self._announced = dropped - self._announced, dropped
        self._queue.append(dropped_record(count, dropped, drops))

    def _busy_with(self, work: Callable[[], None]) -> None:
        with self._cond:
            self._busy = True
        try:
            work()
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _take_lines(self) -> list[bytes]:
        lines: list[bytes] = []
        size = 0
        queue = self._queue
        while len(lines) < self.batch_size:
            try:
                record = queue.popleft()
            except IndexError:
                break
            line = self._line(record)
            if line is None:
                continue
            if lines and size + len(line) > self.batch_bytes:
                queue.appendleft(record)  # starts the next batch
                break
            lines.append(line)
            size += len(line)
        return lines

    def _line(self, record: Record) -> bytes | None:
        """One record as one line of a batch (None: not sent): NDJSON with an ``event_id``."""
        if "event_id" not in record:
            record = {**record, "event_id": new_event_id()}
        return to_json(record)

    def _store_queue(self) -> None:
        while self._queue:
            with self._take_lock:
                lines = self._take_lines()
            if lines:
                self._delivery.store(self._delivery.encode(lines), len(lines))

    def _abandon(self) -> None:
        """At close, when the worker is still busy: store its batch and the queue from this thread.

        The worker keeps storing what it holds if it gets that far: a batch may be spooled twice, and
        the server drops the repeat, which beats losing it when the process exits.
        """
        in_hand = self._delivery.in_hand
        try:
            self._store_queue()
            if in_hand is not None:
                self._delivery.store(*in_hand)
        except Exception as err:
            self.report_failure(err)

    def _after_fork_in_child(self) -> None:
        self._delivery.after_fork()
        self._reset_runtime_state()


def dropped_record(count: int, total: int, drops: dict[str, int]) -> Record:
    """The ``opswatch.dropped`` record: ``count`` records lost since the last one (``total`` in all)."""
    from .._runtime import STATE  # the process's service, host and pid, as every other record has

    runtime = STATE.runtime
    static = runtime.static if runtime is not None else {}
    return {
        "timestamp": format_millis(int(time.time() * 1000)),
        "level": "warn",
        "logger": "opswatch",
        "message": f"opswatch dropped {count:,} records (queue or spool full); see opswatch.stats()",
        "operation": "opswatch.dropped",
        "dropped": count,
        "dropped_total": total,
        **{f"dropped_{reason}": number for reason, number in drops.items()},
        "event_id": new_event_id(),
        **static,
    }


class ServerSink(BatchSink):
    """Batches, compresses and posts records to an opswatch server; see the module docstring."""

    name = "server"
    #: Cron check-ins go to the server whatever this sink's level (opswatch.crons reads this).
    accepts_check_ins = True
    #: Spans (``opswatch.span``) go to the server whatever this sink's level (``opswatch.tracing``).
    accepts_spans = True
    #: Spans of traces not sampled go too, marked ``"sampled": false``, so that the server can keep
    #: errors and slow traces whatever the rate (``traces_tail_sampling``).
    accepts_unsampled_spans = True

    def __init__(self, dsn: Dsn | str, **options: Any) -> None:
        """Ship records at ``level`` and above to ``dsn``; ``options`` are ``BatchSink``'s (the spool,
        the transport, the bounds); the default spool directory is private to the DSN."""
        self.dsn = Dsn.parse(dsn) if isinstance(dsn, str) else dsn
        dsn = self.dsn
        super().__init__(
            _native.events_url(dsn),
            _native.request_headers(dsn),
            f"{dsn.base_url}/{dsn.project}#{dsn.key}",
            **options,
        )


_SINKS: weakref.WeakSet[BatchSink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sink in list(_SINKS):
        with contextlib.suppress(Exception):
            sink._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
