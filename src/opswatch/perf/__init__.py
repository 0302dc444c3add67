"""Performance tracking: the seed's ``trackPerformance``, ``trackQuery``, ``trackExternalCall`` and
``startTimer``, in every shape a Python user reaches for, sync and async::

    rows = track_query("donations.findMany", lambda: db.fetch(...))      # call with a function
    rows = await track_query("donations.findMany", fetch_donations)      # an async function: await it
    @track_performance("donations.list")                                  # decorator, plain or async def
    with track_external_call("stripe.payment_intent.create"): ...         # context manager, and async with
    timer = start_timer("complex_operation"); timer.lap("step1"); timer.end()

Each measurement writes one record: ``debug`` ``perf.<kind>.<name>`` with ``duration_ms`` below the slow
threshold, ``warn`` ``performance.warn.<name>`` above it, ``error`` ``performance.critical.<kind>.<name>``
above the critical one (external calls only warn). Thresholds default to the seed's table (API 1 s/3 s,
database 500 ms/2 s, external 2 s/5 s) and change with ``configure()``, per kind or per operation name,
or per call with ``slow_ms=``/``critical_ms=``. Keyword fields given to a call go on its record.
In tests, ``opswatch.perf.testing.manual_clock()`` moves time by hand instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, overload

from ._config import (
    DEFAULT_THRESHOLDS,
    KINDS,
    PerfConfig,
    Thresholds,
    configure,
    current,
    reset,
)
from ._report import report
from ._timer import Timer
from ._track import Tracker, track

R = TypeVar("R")

__all__ = [
    "DEFAULT_THRESHOLDS",
    "KINDS",
    "PerfConfig",
    "Thresholds",
    "Timer",
    "Tracker",
    "configure",
    "current",
    "report",
    "reset",
    "start_timer",
    "track_external_call",
    "track_performance",
    "track_query",
]


@overload
def track_performance(
    name: str,
    fn: None = None,
    /,
    *,
    slow_ms: float | None = ...,
    critical_ms: float | None = ...,
    **fields: Any,
) -> Tracker: ...
@overload
def track_performance(
    name: str,
    fn: Callable[[], Coroutine[Any, Any, R]] | Awaitable[R],
    /,
    *,
    slow_ms: float | None = ...,
    critical_ms: float | None = ...,
    **fields: Any,
) -> Coroutine[Any, Any, R]: ...
@overload
def track_performance(
    name: str,
    fn: Callable[[], R],
    /,
    *,
    slow_ms: float | None = ...,
    critical_ms: float | None = ...,
    **fields: Any,
) -> R: ...
def track_performance(
    name: str,
    fn: Any = None,
    /,
    *,
    slow_ms: float | None = None,
    critical_ms: float | None = None,
    **fields: Any,
) -> Any:
    """Measure API work (a request handler, a job step) with the ``api`` thresholds (1 s / 3 s).

    With ``fn``: call it and return its result (a coroutine to await when ``fn`` is async). Without:
    a ``Tracker`` to use as a decorator or a (async) context manager. The result and any exception pass
    through unchanged.
    """
    if fn is None:
        return Tracker("api", name, fields, slow_ms, critical_ms)
    return track("api", name, fn, fields, slow_ms, critical_ms)


@overload
def track_query(
    name: str,
    fn: None = None,
    /,
    *,
    slow_ms: float | None = ...,
    critical_ms: float | None = ...,
    **fields: Any,
) -> Tracker: ...
@overload
def track_query(
    name: str,
    fn: Callable[[], Coroutine[Any, Any, R]] | Awaitable[R],
    /,
    *,
    slow_ms: float | None = ...,
    critical_ms: float | None = ...,
    **fields: Any,
) -> Coroutine[Any, Any, R]: ...
@overload
def track_query(
    name: str,
    fn: Callable[[], R],
    /,
    *,
    slow_ms: float | None = ...,
    critical_ms: float | None = ...,
    **fields: Any,
) -> R: ...
def track_query(
    name: str,
    fn: Any = None,
    /,
    *,
    slow_ms: float | None = None,
    critical_ms: float | None = None,
    **fields: Any,
) -> Any:
    """Measure a database query with the ``db`` thresholds (500 ms / 2 s); same shapes as
    ``track_performance``. A critical query writes ``performance.critical.db.<name>``."""
    if fn is None:
        return Tracker("db", name, fields, slow_ms, critical_ms)
    return track("db", name, fn, fields, slow_ms, critical_ms)


@overload
def track_external_call(
    name: str,
    fn: None = None,
    /,
    *,
    slow_ms: float | None = ...,
    critical_ms: float | None = ...,
    **fields: Any,
) -> Tracker: ...
@overload
def track_external_call(
    name: str,
    fn: Callable[[], Coroutine[Any, Any, R]] | Awaitable[R],
    /,
    *,
    slow_ms: float | None = ...,
    critical_ms: float | None = ...,
    **fields: Any,
) -> Coroutine[Any, Any, R]: ...
@overload
def track_external_call(
    name: str,
    fn: Callable[[], R],
    /,
    *,
    slow_ms: float | None = ...,
    critical_ms: float | None = ...,
    **fields: Any,
) -> R: ...
def track_external_call(
    name: str,
    fn: Any = None,
    /,
    *,
    slow_ms: float | None = None,
    critical_ms: float | None = None,
    **fields: Any,
) -> Any:
    """Measure a call to another service (Stripe, email, SMS ...) with the ``external`` thresholds
    (2 s / 5 s); same shapes as ``track_performance``. External calls only ever warn."""
    if fn is None:
        return Tracker("external", name, fields, slow_ms, critical_ms)
    return track("external", name, fn, fields, slow_ms, critical_ms)


def start_timer(
    name: str,
    *,
    kind: str = "api",
    slow_ms: float | None = None,
    critical_ms: float | None = None,
    **fields: Any,
) -> Timer:
    """Start a timer now; ``.lap(step)`` marks steps and ``.end()`` logs the total with every lap.

    ``kind`` picks the thresholds (``api``, ``db`` or ``external``). Also a context manager that ends the
    timer when the block exits.
    """
    if kind not in KINDS:
        kind = "api"
    return Timer(name, kind, fields, slow_ms, critical_ms)
