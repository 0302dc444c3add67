"""One thread owns the DuckDB write connection; everything that changes the file runs on it.

DuckDB allows one writing process per file and serializes writers inside it anyway, so opswatch
gives the write connection to a single thread, fed by a queue (datasette's model). Readers never
wait for it: they use their own cursors and see the last committed state (DuckDB's MVCC).

Two kinds of work arrive on the queue:

* **appends**, which are merged: the thread takes the first one waiting, then every other append
  already queued (up to ``max_rows`` rows), and commits them in one transaction (a *group commit*).
  Under load, many small concurrent appends cost one WAL sync, not one each. Each caller's future
  gets its own result. If the merged transaction fails, each append is retried alone, so one bad batch
  fails only its own caller.
* **calls** (``call(fn)``): retention deletes, checkpoints, anything else that writes; run alone.

When the queue stays empty for ``idle_seconds`` the thread runs ``on_idle`` (the store checkpoints a
grown WAL there). ``close`` finishes everything queued before it, then closes the connection.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from .base import StoreClosed

T = TypeVar("T")
Payload = TypeVar("Payload")


class _Append(Generic[Payload]):
    __slots__ = ("future", "payload", "size")

    def __init__(self, payload: Payload, size: int) -> None:
        self.payload = payload
        self.size = size
        self.future: Future[Any] = Future()


class _Call:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


_STOP = object()


class WriterThread(Generic[Payload]):
    """The single writer. ``commit(conn, payloads) -> results`` writes merged appends in one transaction
    (it must roll back itself on failure); ``on_idle(conn)`` runs when the queue has been empty a while."""

    def __init__(
        self,
        conn: Any,
        commit: Callable[[Any, Sequence[Payload]], Sequence[Any]],
        *,
        max_rows: int,
        on_idle: Callable[[Any], None] | None = None,
        idle_seconds: float = 5.0,
        name: str = "opswatch-store-writer",
    ) -> None:
        self._conn = conn
        self._commit = commit
        self._max_rows = max_rows
        self._on_idle = on_idle
        self._idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._pending_rows = 0
        self._pending_items = 0
        self.commits = 0
        self.last_commit_rows = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        """Rows queued and not yet committed."""
        return self._pending_rows

    @property
    def pending_items(self) -> int:
        """Appends and calls queued and not yet done."""
        return self._pending_items

    def append(self, payload: Payload, size: int) -> Future[Any]:
        """Queue ``payload`` (``size`` rows) for the next group commit; the future gets its result."""
        item: _Append[Payload] = _Append(payload, size)
        self._put(item, size)
        return item.future

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(conn)`` on the writer thread, alone, and return its result (or raise its error)."""
        item = _Call(fn)
        self._put(item, 0)
        result: T = item.future.result()
        return result

    def _put(self, item: Any, size: int) -> None:
        with self._lock:
            if self._closed or not self._thread.is_alive():
                raise StoreClosed("the event store is closed")
            self._pending_rows += size
            self._pending_items += 1
        self._queue.put(item)

    def close(self, timeout: float | None = None) -> None:
        """Finish everything queued, close the connection, and stop the thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        held: Any = None
        try:
            while True:
                if held is not None:
                    item, held = held, None
                else:
                    try:
                        item = self._queue.get(timeout=self._idle_seconds)
                    except queue.Empty:
                        self._idle()
                        continue
                if item is _STOP:
                    return
                if isinstance(item, _Call):
                    self._run_call(item)
                    continue
                group: list[_Append[Payload]] = [item]
                rows = item.size
                while rows < self._max_rows:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if not isinstance(more, _Append):
                        held = more  # a call or the stop: after this group, in order
                        break
                    group.append(more)
                    rows += more.size
                self._run_group(group, rows)
        finally:
            self._fail_queued()
            with contextlib.suppress(Exception):  # closing must not raise out of the thread
                self._conn.close()

    def _done(self, rows: int) -> None:
        with self._lock:
            self._pending_rows -= rows
            self._pending_items -= 1

    def _run_call(self, item: _Call) -> None:
        try:
            result = item.fn(self._conn)
        except BaseException as err:
            item.future.set_exception(err)
        else:
            item.future.set_result(result)
        finally:
            self._done(0)

    def _run_group(self, group: list[_Append[Payload]], rows: int) -> None:
        try:
            results = self._commit(self._conn, [item.payload for item in group])
        except BaseException as err:
            if len(group) == 1:
                group[0].future.set_exception(err)
                self._done(group[0].size)
                return
            for item in group:  # find the one that failed; the others still commit
                self._run_group([item], item.size)
            return
        self.commits += 1
        self.last_commit_rows = rows
        for item, result in zip(group, results, strict=True):
            item.future.set_result(result)
            self._done(item.size)

    def _idle(self) -> None:
        if self._on_idle is None:
            return
        with contextlib.suppress(Exception):  # a failed idle checkpoint is tried again next time
            self._on_idle(self._conn)

    def _fail_queued(self) -> None:
        """After the thread stopped: fail whatever is still queued (only if the thread died)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, (_Append, _Call)):
                item.future.set_exception(StoreClosed("the event store is closed"))
