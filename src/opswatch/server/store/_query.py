"""Running one read-only statement on the DuckDB store within its limits (``Queries.run``).

Time: at ``timeout`` DuckDB is interrupted (from a timer). DuckDB looks for the interrupt between
chunks, so a statement that builds one huge value does not stop; it is answered 408 by the deadline
all the same and finishes on its own thread, and a few such statements at most may run at once.
Rows and bytes: rows are fetched a few at a time and the answer is cut at the row cap or the size cap,
whichever comes first. Memory: DuckDB's ``memory_limit``/``max_temp_directory_size``, set on the
database; running out is a ``QueryError`` that names them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import duckdb

from .. import limits
from .base import QueryBusy, QueryError, QueryResult, QueryTimeout


class Queries:
    """The store's statements in flight; ``grace`` and ``memory`` (its limits, as text) for messages."""

    def __init__(self, *, grace: float = limits.QUERY_STOP_GRACE_SECONDS, memory: str = "") -> None:
        self._lock = threading.Lock()
        self._abandoned = 0
        self._grace = grace
        self._memory = memory
        self._threads: set[threading.Thread] = set()

    def wait(self) -> None:
        """Wait until every statement has ended (the store's ``close``: its connection must be idle)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()

    def run(
        self,
        cursor_factory: Callable[[], Any],
        sql: str,
        *,
        max_rows: int,
        timeout: float,
        max_bytes: int = limits.QUERY_MAX_ANSWER_BYTES,
    ) -> QueryResult:
        """Run ``sql`` on a fresh cursor from ``cursor_factory``: at most ``max_rows`` rows and about
        ``max_bytes`` bytes of values (``truncated``, ``cut_by`` say which cap cut), answered within
        ``2 * timeout + grace`` seconds (see the module docstring).

        Raises ``QueryTimeout`` (interrupted, or not stopped by the deadline), ``QueryBusy`` (while
        ``QUERY_MAX_ABANDONED`` statements that ran past their deadline still run) and ``QueryError``
        for any other failure, out of memory included.
        """
        with self._lock:
            if self._abandoned >= limits.QUERY_MAX_ABANDONED:
                raise QueryBusy(
                    "earlier queries that ran past their time limit are still being stopped; retry shortly"
                )
        cursor = cursor_factory()
        guard = threading.Lock()
        finished = False
        fired = False
        abandoned = False
        outcome: list[QueryResult | BaseException] = []
        done = threading.Event()

        def interrupt() -> None:
            nonlocal fired
            with guard:
                if not finished:
                    fired = True
                    cursor.interrupt()

        def run() -> None:
            nonlocal finished
            try:
                outcome.append(_fetch(cursor, sql, max_rows, max_bytes))
            except BaseException as err:  # handed to the waiting caller
                outcome.append(err)
            finally:
                with guard:
                    finished = True
                timer.cancel()
                cursor.close()
                done.set()
                with self._lock:
                    if abandoned:
                        self._abandoned -= 1
                    self._threads.discard(threading.current_thread())

        timer = threading.Timer(timeout, interrupt)
        timer.daemon = True
        started = time.perf_counter()
        timer.start()
        thread = threading.Thread(target=run, name="opswatch-query", daemon=True)
        with self._lock:  # started under the lock: ``wait`` never sees a thread it cannot join yet
            self._threads.add(thread)
            thread.start()
        stopped = (
            f"the query ran longer than {timeout:g} s and was stopped; "
            "narrow it (a time range, fewer columns) or allow more time"
        )
        if not done.wait(2 * timeout + self._grace):
            with self._lock:
                if not done.is_set():
                    abandoned = True
                    self._abandoned += 1
            if abandoned:
                raise QueryTimeout(stopped)
        found = outcome[0]
        if isinstance(found, duckdb.OutOfMemoryException):
            raise QueryError(
                f"the query needs more memory than the server allows ({self._memory}); narrow it: "
                "a time range, fewer columns, an aggregate"
            ) from None
        if isinstance(found, duckdb.Error):
            if fired or isinstance(found, duckdb.InterruptException):
                raise QueryTimeout(stopped) from None
            raise QueryError(_error_text(found)) from None
        if isinstance(found, BaseException):
            raise found
        found.elapsed_ms = (time.perf_counter() - started) * 1000
        return found


def _fetch(cursor: Any, sql: str, max_rows: int, max_bytes: int) -> QueryResult:
    """Run ``sql`` and take its rows up to the row cap and the size cap (``QueryResult.cut_by``).

    Rows are taken a few at a time, sized by the rows seen so far, so an answer of huge values is cut
    before all of them are Python objects.
    """
    cursor.execute(sql)
    columns = [column[0] for column in cursor.description or ()]
    rows: list[tuple[Any, ...]] = []
    size = 0
    batch = 16
    while len(rows) <= max_rows:
        found = cursor.fetchmany(min(batch, max_rows + 1 - len(rows)))
        if not found:
            break
        for row in found:
            size += answer_size(row)
            if size > max_bytes:
                return QueryResult(columns, rows, truncated=True, cut_by="bytes")
            rows.append(tuple(row))
        average = max(size // len(rows), 1)
        batch = max(1, min(4096, (max_bytes - size) // average))
    if len(rows) > max_rows:
        return QueryResult(columns, rows[:max_rows], truncated=True, cut_by="rows")
    return QueryResult(columns, rows)


def answer_size(value: Any) -> int:
    """About how many bytes ``value`` takes in a JSON answer: text and blobs by length, others 8."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, (bytes, bytearray, memoryview)):
        return 2 * len(value) + 2
    if isinstance(value, (list, tuple)):
        return sum(answer_size(item) for item in value) + 2
    if isinstance(value, dict):
        return sum(answer_size(key) + answer_size(item) for key, item in value.items()) + 2
    return 8


def _error_text(err: Exception) -> str:
    """DuckDB's message without the trailing source excerpt, which repeats the SQL."""
    text = str(err).strip()
    return text.split("\n\nLINE ")[0].strip() or type(err).__name__
