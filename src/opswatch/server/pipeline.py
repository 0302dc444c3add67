"""The ingest pipeline: redact, then a durable group commit, then the hooks. One instance per server.

``submit(project_id, records, source)`` is called by every ingest handler with records that passed
validation (``opswatch.server.ingest``). It redacts each record with the SDK's rules
(``opswatch.server.redaction``), so what reaches the store is redacted even when the sender did not,
stamps ``project_id``, and queues the batch.
It returns a future that completes only after the store's ``append`` returned, that is, when the
records are durable: a handler answers 2xx only after awaiting it.

One committer thread drains the queue: every batch that arrived while the previous commit ran goes into
the next single ``append`` (a group commit), so a thousand small concurrent requests cost a few commits,
not a thousand. A second thread then runs ``ctx.hooks`` with each group's newly stored records, in
commit order, and only then completes the group's futures (a client that got 2xx can rely on the hooks
having seen its events). The two overlap: while the hooks of one group run, the next group is written.
A hook that fails does not fail the request (the events are durable): it is counted in ``/metrics``
(``opswatch_hook_failures_total``, ``opswatch_hook_records_failed_total``, by hook) and ``/healthz``
answers ``degraded`` for ``HOOK_DEGRADED_SECONDS``.

Bounded: past ``max_pending_events`` waiting events, ``submit`` raises ``Overloaded`` (the handler answers
429 with Retry-After). Idempotent by ``(project_id, event_id)``: keys stored recently are remembered (two
generations of ``RECENT_IDS_PER_GENERATION``), so a retried batch is answered with exact ``duplicates``
and not written again; older repeats are caught by the store itself, which is idempotent by the same key
whatever the timestamp, and the hooks see only what the store newly stored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..log import get_logger
from ..record import format_timestamp
from . import limits
from .ingest.records import KINDS, Refused, normalize
from .redaction import ServerRedactor

if TYPE_CHECKING:
    from .context import ServerContext

_log = get_logger("opswatch.server.pipeline")


class Overloaded(Exception):
    """Too many events are waiting for the store; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int = limits.RETRY_AFTER_SECONDS) -> None:
        super().__init__(f"the server is busy; retry after {retry_after} s")
        self.retry_after = retry_after


class StoreUnavailable(Exception):
    """The store refused the append, or the server is shutting down; nothing of the batch is promised."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a submitted batch ended: ``stored`` new events and ``duplicates`` already stored."""

    stored: int
    duplicates: int


@dataclasses.dataclass(eq=False)
class _Job:
    records: list[dict[str, Any]]
    source: str
    future: Future[Outcome]
    duplicates: int = 0


@dataclasses.dataclass(eq=False)
class _Stored:
    """A durable group on its way to the hooks and the answers."""

    group: list[_Job]
    size: int
    fresh: list[dict[str, Any]]
    store_duplicates: int
    kinds: dict[tuple[str, str], int]


_STOP = object()


#: A stored record's identity: ``(project_id, event_id)`` (ids are unique per project, not per server).
_Key = tuple[int, str]


class _RecentIds:
    """Keys stored lately: two generations of sets, the older dropped when the newer fills."""

    def __init__(self, per_generation: int) -> None:
        self.per_generation = per_generation
        self.current: set[_Key] = set()
        self.previous: set[_Key] = set()

    def __contains__(self, key: _Key) -> bool:
        return key in self.current or key in self.previous

    def add_all(self, ids: Sequence[_Key]) -> None:
        self.current.update(ids)
        if len(self.current) >= self.per_generation:
            self.previous, self.current = self.current, set()


class Pipeline:
    """Redaction, group commit and hooks for one server (see the module docstring)."""

    def __init__(self, ctx: ServerContext, redactor: ServerRedactor | None = None) -> None:
        self.ctx = ctx
        self.redactor = redactor if redactor is not None else ServerRedactor(enabled=ctx.settings.redact)
        self.redacting = ctx.settings.redact
        self.max_pending = ctx.settings.max_pending_events
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._recent = _RecentIds(limits.RECENT_IDS_PER_GENERATION)
        self._thread: threading.Thread | None = None
        self._after: queue.SimpleQueue[_Stored | object] = queue.SimpleQueue()
        self._hook_thread: threading.Thread | None = None
        self._closed = False
        #: When a hook last failed or could not process a record (epoch seconds), for ``/healthz``.
        self.last_hook_failure: float | None = None

    # -- the request side -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the committer runs and batches are taken."""
        return not self._closed and self._thread is not None and self._thread.is_alive()

    @property
    def pending(self) -> int:
        """Events submitted and not yet durable (the queue depth)."""
        return self._pending

    def submit(
        self, project_id: int, records: list[dict[str, Any]], source: str, *, prepared: bool = False
    ) -> Future[Outcome]:
        """Redact ``records`` (normalized by ingest), stamp ``project_id``, and queue them for the store.

        Raises ``Overloaded`` when the queue is full and ``StoreUnavailable`` after ``stop``. The records
        passed in are not changed; redacted copies are stored. ``prepared=True``: the records come from
        ``prepare`` already (an ingest worker process redacted them) and are queued as they are.
        """
        future: Future[Outcome] = Future()
        if not records:
            future.set_result(Outcome(0, 0))
            return future
        count = len(records)
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the server is shutting down")
            if self._pending + count > self.max_pending and self._pending > 0:
                raise Overloaded()
            self._pending += count
        try:
            clean = records if prepared else self.prepare(project_id, records)
        except BaseException:
            with self._lock:
                self._pending -= count
            raise
        with self._lock:  # ``stop`` queues its marker under this lock: no job can land behind it
            if self._closed:
                self._pending -= count
                raise StoreUnavailable("the server is shutting down")
            self._queue.put(_Job(clean, source, future))
        return future

    def ingest(
        self, project_id: int, records: list[dict[str, Any]], source: str, timeout: float = 30.0
    ) -> Outcome:
        """``submit`` and wait for durability: for subsystems that write records from the server itself.

        Records are normalized here (any kind, ``state_change`` included; a ``received_at`` they carry is
        kept); a record that cannot be normalized raises ``ValueError``. Never call this from a hook:
        hooks run on the thread that answers, which would wait for itself (``RuntimeError``).
        """
        if threading.current_thread() in (self._thread, self._hook_thread):
            raise RuntimeError("Pipeline.ingest called from an ingest hook; queue the records instead")
        epoch = self.ctx.now().timestamp()
        stamp = format_timestamp(epoch)
        ready: list[dict[str, Any]] = []
        for record in records:
            copy = dict(record)
            given = copy.get("received_at")
            try:
                normalize(copy, epoch, stamp, KINDS)
            except Refused as refused:
                raise ValueError(f"a record cannot be stored: {refused}") from None
            if isinstance(given, str) and given:
                copy["received_at"] = given
            ready.append(copy)
        return self.submit(project_id, ready, source).result(timeout)

    def prepare(self, project_id: int, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Redacted copies of ``records`` (when redaction is on), each stamped with ``project_id``."""
        out = self.redactor.redact_records(records) if self.redacting else [dict(r) for r in records]
        for clean in out:
            clean["project_id"] = project_id
        return out

    # -- the committer --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the committer thread (once)."""
        if self._thread is None:
            self._hook_thread = threading.Thread(target=self._run_after, name="opswatch-hooks", daemon=True)
            self._hook_thread.start()
            self._thread = threading.Thread(target=self._run, name="opswatch-committer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Refuse new batches, commit every queued one, stop the thread; True when all were committed."""
        with self._lock:
            if self._closed:
                return self._thread is None or not self._thread.is_alive()
            self._closed = True
            if self._thread is not None:
                self._queue.put(_STOP)
        if self._thread is None or self._hook_thread is None:
            return self._pending == 0
        deadline = time.monotonic() + timeout
        self._thread.join(timeout)  # the committer passes the marker on to the hook thread when done
        self._hook_thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive() and not self._hook_thread.is_alive()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._after.put(_STOP)
                return
            assert isinstance(item, _Job)
            group = [item]
            size = len(item.records)
            stop_after = False
            while size < limits.MAX_EVENTS_PER_COMMIT:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop_after = True
                    break
                assert isinstance(more, _Job)
                group.append(more)
                size += len(more.records)
            try:
                self._commit(group, size)
            except Exception as err:  # a bug: fail this group, keep the committer alive for the next
                _log.error("the committer failed", {"events": size}, err)
                self._fail(group, size, StoreUnavailable(f"the commit failed: {type(err).__name__}"))
            if stop_after:
                self._after.put(_STOP)
                return

    def _commit(self, group: list[_Job], size: int) -> None:
        """One durable append for the whole group; hooks and answers follow on the hook thread."""
        ctx = self.ctx
        metrics = ctx.metrics
        started = time.perf_counter()
        fresh: list[dict[str, Any]] = []
        fresh_ids: list[_Key] = []
        seen: set[_Key] = set()
        recent = self._recent
        kinds: dict[tuple[str, str], int] = {}
        for job in group:
            for record in job.records:
                event_key = (record["project_id"], record["event_id"])
                if event_key in seen or event_key in recent:
                    job.duplicates += 1
                else:
                    seen.add(event_key)
                    fresh.append(record)
                    fresh_ids.append(event_key)
                    key = (job.source, record.get("kind") or "log")
                    kinds[key] = kinds.get(key, 0) + 1
        try:
            kept = ctx.store.append_new(fresh) if fresh else []
        except Exception as err:
            _log.error("the event store refused an append", {"events": len(fresh)}, err)
            self._fail(group, size, StoreUnavailable(f"the event store failed: {type(err).__name__}"))
            return
        recent.add_all(fresh_ids)
        metrics.batch_latency.observe(time.perf_counter() - started)
        submitted = len(fresh)
        if len(kept) < submitted:  # the store had some already (a resend after a restart): hooks skip them
            fresh = [fresh[position] for position in kept]
        self._after.put(_Stored(group, size, fresh, submitted - len(kept), kinds))

    def _run_after(self) -> None:
        """The hook thread: hooks, then answers, group by group in commit order."""
        while True:
            item = self._after.get()
            if item is _STOP:
                return
            assert isinstance(item, _Stored)
            try:
                self._hooks_and_answers(item)
            except Exception as err:  # a bug: the events are stored; answer so nobody waits forever
                _log.error("answering a commit failed", {"events": item.size}, err)
                self._finish(item.group, item.size, lambda job: job.future.set_result(Outcome(0, 0)))

    def _hooks_and_answers(self, stored: _Stored) -> None:
        metrics = self.ctx.metrics
        if stored.fresh:
            self._run_hooks(stored.fresh)
        for (source, kind), count in stored.kinds.items():
            metrics.accepted.inc(count, source=source, kind=kind)
        store_duplicates = stored.store_duplicates

        def answer(job: _Job) -> None:
            nonlocal store_duplicates
            # The store only says how many of the group it had already; those were new to this process
            # (older than the recent-id window), which happens after a restart. Count them against the
            # first jobs; exact whenever the group is one request, the usual case for a retry.
            extra = min(store_duplicates, len(job.records) - job.duplicates)
            store_duplicates -= extra
            duplicates = job.duplicates + extra
            if duplicates:
                metrics.duplicates.inc(duplicates, source=job.source)
            job.future.set_result(Outcome(len(job.records) - duplicates, duplicates))

        self._finish(stored.group, stored.size, answer)

    def _fail(self, group: list[_Job], size: int, failure: Exception) -> None:
        self._finish(group, size, lambda job: job.future.set_exception(failure))

    def _finish(self, group: list[_Job], size: int, complete: Callable[[_Job], None]) -> None:
        with self._lock:
            self._pending -= size
        for job in group:
            with contextlib.suppress(Exception):  # a future cancelled by a client that went away
                complete(job)

    def _run_hooks(self, records: list[dict[str, Any]]) -> None:
        """Run every hook; count what each could not do (``/metrics``) and when (``/healthz``)."""
        metrics = self.ctx.metrics
        for hook in list(self.ctx.hooks):
            name = hook_name(hook)
            try:
                failed = hook(self.ctx, records)
            except Exception as err:
                _log.error("an ingest hook failed", {"hook": name, "events": len(records)}, err)
                metrics.hook_failures.inc(hook=name)
                failed = len(records)
            if isinstance(failed, int) and not isinstance(failed, bool) and failed > 0:
                metrics.hook_records_failed.inc(failed, hook=name)
                self.last_hook_failure = self.ctx.now().timestamp()

    def hook_trouble(self) -> dict[str, Any] | None:
        """None when no hook failed in the last ``HOOK_DEGRADED_SECONDS``; else what ``/healthz`` shows."""
        last = self.last_hook_failure
        if last is None or self.ctx.now().timestamp() - last > limits.HOOK_DEGRADED_SECONDS:
            return None
        metrics = self.ctx.metrics
        return {
            "hook_failures": int(metrics.hook_failures.total()),
            "hook_records_failed": int(metrics.hook_records_failed.total()),
            "last_hook_failure": format_timestamp(last),
        }


def hook_name(hook: Any) -> str:
    """A short, stable name for a hook (a metric label): ``MonitorService.hook``, ``IssueHook``."""
    name = getattr(hook, "__qualname__", None)
    return str(name) if name else type(hook).__name__
