"""One tracker for every way of measuring a piece of work, sync and async.

``Tracker`` holds what is measured (kind, name, extra fields, optional thresholds) and offers each shape a
Python user reaches for; all of them end in the same ``report``:

- ``run(...)``: call ``fn()``; when it returns a coroutine (an ``async def`` or a lambda around one) the
  result is a coroutine to await, measured from its first step to its end;
- ``tracker(fn)``: a decorator for plain and ``async def`` functions;
- ``with tracker:`` and ``async with tracker:``.

Return values and exceptions pass through unchanged; an exception is measured once and re-raised. The
hot paths read the clock twice and compare once when nobody collects debug records (see
``benchmarks/bench_perf.py``), so the code favours local variables over attribute lookups.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from types import CoroutineType, TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from .._runtime import STATE
from ..record import WARN
from . import _config
from ._report import LOGGER, report

P = ParamSpec("P")
R = TypeVar("R")


async def _measure_awaitable(
    awaitable: Awaitable[R],
    start: float | None,
    kind: str,
    name: str,
    fields: Mapping[str, Any] | None,
    slow_ms: float | None,
    critical_ms: float | None,
) -> R:
    clock = _config.CURRENT.clock
    if start is None:
        start = clock()
    try:
        result = await awaitable
    except BaseException as exc:
        report(kind, name, clock() - start, fields, exc, slow_ms, critical_ms)
        raise
    report(kind, name, clock() - start, fields, None, slow_ms, critical_ms)
    return result


def run(
    kind: str,
    name: str,
    fn: Callable[[], Any],
    fields: Mapping[str, Any] | None,
    slow_ms: float | None,
    critical_ms: float | None,
) -> Any:
    """Call ``fn()`` and measure it; a coroutine result comes back wrapped, to be awaited."""
    clock = _config.CURRENT.clock
    start = clock()
    try:
        result = fn()
    except BaseException as exc:
        report(kind, name, clock() - start, fields, exc, slow_ms, critical_ms)
        raise
    if isinstance(result, CoroutineType):
        # a coroutine does nothing until awaited: measure from its first step
        return _measure_awaitable(result, None, kind, name, fields, slow_ms, critical_ms)
    report(kind, name, clock() - start, fields, None, slow_ms, critical_ms)
    return result


class Tracker:
    """Measures work of one ``kind`` (api, db, external) under one ``name``.

    As a context manager an instance measures one block at a time (nested blocks of the same instance
    work; sharing one instance between threads or tasks does not): ``with track_query(...)`` makes a
    fresh one each time, which is the usual shape. After a block, ``duration_ms`` holds what was
    measured.
    """

    __slots__ = ("_outer", "_start", "critical_ms", "duration_ms", "fields", "kind", "name", "slow_ms")

    def __init__(
        self,
        kind: str,
        name: str,
        fields: Mapping[str, Any] | None = None,
        slow_ms: float | None = None,
        critical_ms: float | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.fields = fields or None
        self.slow_ms = slow_ms
        self.critical_ms = critical_ms
        self.duration_ms: float | None = None
        self._start: float | None = None
        self._outer: list[float] | None = None

    def run(self, fn: Callable[[], R]) -> R:
        """Call ``fn()`` and measure it; a coroutine result comes back wrapped, to be awaited."""
        result: R = run(self.kind, self.name, fn, self.fields, self.slow_ms, self.critical_ms)
        return result

    def wrap_awaitable(self, awaitable: Awaitable[R]) -> Coroutine[Any, Any, R]:
        """A coroutine that awaits ``awaitable`` and measures it (timing starts now for futures/tasks
        that already run, and at the first step for coroutines, which do nothing until awaited)."""
        start = None if isinstance(awaitable, CoroutineType) else _config.CURRENT.clock()
        return _measure_awaitable(
            awaitable, start, self.kind, self.name, self.fields, self.slow_ms, self.critical_ms
        )

    # -- decorator ------------------------------------------------------------------------------------

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` (plain or ``async def``) so that every call is measured."""
        kind, name, fields = self.kind, self.name, self.fields
        slow_ms, critical_ms = self.slow_ms, self.critical_ms
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def measured_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                clock = _config.CURRENT.clock
                start = clock()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    report(kind, name, clock() - start, fields, exc, slow_ms, critical_ms)
                    raise
                report(kind, name, clock() - start, fields, None, slow_ms, critical_ms)
                return result

            return measured_async

        @functools.wraps(fn)
        def measured(*args: P.args, **kwargs: P.kwargs) -> Any:
            clock = _config.CURRENT.clock
            start = clock()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                report(kind, name, clock() - start, fields, exc, slow_ms, critical_ms)
                raise
            if isinstance(result, CoroutineType):  # a plain function handing back a coroutine
                return _measure_awaitable(result, None, kind, name, fields, slow_ms, critical_ms)
            report(kind, name, clock() - start, fields, None, slow_ms, critical_ms)
            return result

        return measured

    # -- context managers -----------------------------------------------------------------------------

    def __enter__(self) -> Tracker:
        if self._start is not None:  # the same instance entered again inside its own block
            self._outer = [*(self._outer or ()), self._start]
        self._start = _config.CURRENT.clock()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        end = _config.CURRENT.clock()
        start = end if self._start is None else self._start
        outer = self._outer
        self._start = outer.pop() if outer else None
        self.duration_ms = report(
            self.kind, self.name, end - start, self.fields, exc, self.slow_ms, self.critical_ms
        )

    # nothing to await: the async forms are the sync ones
    async def __aenter__(self) -> Tracker:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"<opswatch.perf.Tracker {self.kind} {self.name!r}>"


def track(
    kind: str,
    name: str,
    fn: Any,
    fields: Mapping[str, Any],
    slow_ms: float | None,
    critical_ms: float | None,
) -> Any:
    """The shared body of ``track_performance``/``track_query``/``track_external_call``."""
    if fn is None:
        return Tracker(kind, name, fields, slow_ms, critical_ms)
    if callable(fn):
        return run(kind, name, fn, fields or None, slow_ms, critical_ms)
    if inspect.isawaitable(fn):
        return Tracker(kind, name, fields, slow_ms, critical_ms).wrap_awaitable(fn)
    # Nothing to measure (a value where a function was meant): say so, and hand the value back untouched
    # rather than raise into the application.
    STATE.emit(
        WARN,
        LOGGER,
        "Nothing to measure: expected a function or an awaitable",
        None,
        {"operation": "perf.misuse", "name": name, "got_type": type(fn).__name__},
        None,
    )
    return fn
