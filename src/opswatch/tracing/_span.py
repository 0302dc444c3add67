"""The light span model and its scope (see ``opswatch.tracing``)."""

from __future__ import annotations

import functools
import inspect
import random
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Final, TypeVar

from .._context import _fields
from .._runtime import STATE, _internal_error
from ..record import format_millis, new_event_id
from ..sinks import Sink
from ._propagation import head_decision

F = TypeVar("F", bound=Callable[..., Any])

#: ``record["logger"]`` of span records.
LOGGER: Final = "opswatch.span"
#: OTel's span kinds.
KINDS: Final = frozenset({"internal", "server", "client", "producer", "consumer"})

_current: ContextVar[Span | None] = ContextVar("opswatch_span", default=None)
_bits = random.getrandbits
_now_ns = time.time_ns


def current_span() -> Span | None:
    """The span open in this task or thread, or None."""
    return _current.get()


class Span:
    """One timed operation of a trace: ids, name, kind, attributes, start and end, status."""

    __slots__ = (
        "attributes",
        "baggage",
        "end_ns",
        "kind",
        "name",
        "parent_span_id",
        "sampled",
        "span_id",
        "start_ns",
        "status",
        "status_message",
        "trace_id",
        "tracestate",
    )

    def __init__(
        self,
        name: str,
        attributes: dict[str, Any],
        kind: str = "internal",
        trace_id: str | None = None,
        parent_span_id: str | None = None,
        sampled: bool = True,
    ) -> None:
        self.name = name
        self.attributes = attributes
        self.kind = kind if kind in KINDS else "internal"
        self.trace_id = trace_id or f"{_bits(128) or 1:032x}"
        self.span_id = f"{_bits(64) or 1:016x}"
        self.parent_span_id = parent_span_id
        self.start_ns = _now_ns()
        self.end_ns = 0
        self.status = "unset"
        self.status_message: str | None = None
        #: Whether the span is kept (head sampling); an unsampled span is never sent.
        self.sampled = sampled
        #: What the caller sent to be forwarded: W3C ``tracestate``, Sentry's ``sentry-*`` baggage.
        self.tracestate: str | None = None
        self.baggage: str | None = None

    def set_attribute(self, key: str, value: Any) -> None:
        """Add or replace one attribute."""
        self.attributes[key] = value

    def set_status(self, status: str, message: str | None = None) -> None:
        """``ok``, ``error`` or ``unset``, with an optional message."""
        self.status = status
        self.status_message = message

    def to_fields(self) -> dict[str, Any]:
        """The span as the fields of a native record of kind ``span``."""
        fields: dict[str, Any] = {
            "kind": "span",
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "name": self.name,
            "span_kind": self.kind,
            "start_unix_nano": self.start_ns,
            "duration_ms": (self.end_ns - self.start_ns) / 1e6,
            "status": self.status,
            "attributes": self.attributes,
        }
        if self.parent_span_id:
            fields["parent_span_id"] = self.parent_span_id
        if self.status_message:
            fields["status_message"] = self.status_message
        if not self.sampled:  # kept only for tail sampling: the server decides (``traces_tail_sampling``)
            fields["sampled"] = False
        return fields


def bind(made: Span | None) -> Token[Span | None]:
    """Make ``made`` the current span (the middleware's request span); undo with ``_current.reset``."""
    return _current.set(made)


def _start(
    name: str, kind: str, attributes: dict[str, Any], outer: tuple[str | None, str | None, bool] | None = None
) -> tuple[Span, Token[Span | None], Any]:
    """Open a span as the current one: a child of the open span, else of ``outer`` (default:
    ``outer_trace()``); return it with the tokens ``_end`` needs."""
    parent = _current.get()
    if parent is not None:
        made = Span(name, attributes, kind, parent.trace_id, parent.span_id, parent.sampled)
        made.tracestate, made.baggage = parent.tracestate, parent.baggage
    else:
        made = Span(name, attributes, kind, *(outer or outer_trace()))
    token = _current.set(made)
    fields_token = _fields.set({**_fields.get(), "trace_id": made.trace_id, "span_id": made.span_id})
    return made, token, fields_token


def outer_trace() -> tuple[str | None, str | None, bool]:
    """Where a span started with no opswatch span open belongs: ``(trace_id, parent_span_id, sampled)``.

    The trace bound in the context (an incoming ``traceparent``) comes first, then the app's current
    OpenTelemetry span (its sampled flag wins), else a new trace (``traces_sample_rate`` decides).
    """
    bound = _fields.get()
    trace_id = bound.get("trace_id")
    if trace_id:
        return (trace_id if isinstance(trace_id, str) else None), bound.get("span_id"), head_decision()
    runtime = STATE.runtime
    if runtime is not None and runtime.otel is not None:
        ids = runtime.otel()
        if ids is not None:
            return ids
    return None, None, head_decision()


def _end(made: Span, token: Token[Span | None], fields_token: Any, error: BaseException | None) -> None:
    made.end_ns = _now_ns()
    try:
        _fields.reset(fields_token)
        _current.reset(token)
    except ValueError:  # ended in another context (an awaitable awaited in another task): nothing to undo
        pass
    finish(made, error)


def leave(token: Token[Span | None], fields_token: Any) -> None:
    """Stop ``_start``'s span being current here, in the context it was started in, without ending it
    (its work goes on elsewhere: an awaitable awaited later); end it with ``finish``."""
    _fields.reset(fields_token)
    _current.reset(token)


def finish(made: Span, error: BaseException | None) -> None:
    """End and send a span that is no longer current (``leave``); ``error`` marks it failed."""
    if not made.end_ns:
        made.end_ns = _now_ns()
    if error is not None and made.status != "error":
        made.status = "error"
        made.status_message = f"{type(error).__name__}: {error}"
    send(made)


_routes: tuple[object, tuple[Sink, ...], tuple[Sink, ...]] = (None, (), ())


def routes(runtime: Any) -> tuple[tuple[Sink, ...], tuple[Sink, ...]]:
    """The sinks that take the spans of sampled traces, and those that take the spans of traces not
    sampled (sinks with ``accepts_unsampled_spans``, when ``traces_tail_sampling`` is not off);
    worked out once per list of sinks (a runtime replaces its list when a sink is added or removed)."""
    global _routes
    sinks = runtime.sinks
    seen, sampled, unsampled = _routes
    if seen is not sinks:
        sampled = tuple(sink for sink in sinks if getattr(sink, "accepts_spans", False))
        tail = runtime.settings.traces_tail_sampling is not False
        unsampled = tuple(s for s in sampled if getattr(s, "accepts_unsampled_spans", False)) if tail else ()
        _routes = (sinks, sampled, unsampled)
    return sampled, unsampled


def send(made: Span) -> None:
    """Send an ended span to every sink that takes it (a span not sampled: only to the sinks doing tail
    sampling, marked ``"sampled": false``). Never raises."""
    try:
        runtime = STATE.runtime or STATE.get()
        sinks = routes(runtime)[0 if made.sampled else 1]
        if not sinks:
            return
        record = span_record(runtime, made)
        for sink in sinks:
            try:
                sink.write(record)
            except Exception as err:
                sink.report_failure(err)
    except Exception as err:  # monitoring never breaks the app
        _internal_error(err)


def span_record(runtime: Any, made: Span) -> dict[str, Any]:
    """The native record of an ended span, redacted with the runtime's rules.

    Built here rather than by the logger: the ids, times, kind and status are the span's own (nothing a
    secret can hide in), so only the name, the attributes and the status message are redacted, and the
    context's other fields are not copied into every span (log records carry them).
    """
    fields = made.to_fields()
    if runtime.redacting:
        redactor = runtime.redactor
        fields["name"] = redactor.redact_text(made.name)
        if made.attributes:
            fields["attributes"] = redactor.redact(made.attributes)
        if made.status_message:
            fields["status_message"] = redactor.redact_text(made.status_message)
    return {
        "timestamp": format_millis(made.end_ns // 1_000_000),
        "level": "info",
        "logger": LOGGER,
        "message": fields["name"],
        **fields,
        "event_id": new_event_id(),
        **runtime.static,
    }


class _Scope:
    """What ``span()`` returns: a context manager (sync and async) and a decorator."""

    __slots__ = ("_attributes", "_kind", "_name", "_open")

    def __init__(self, name: str, kind: str, attributes: dict[str, Any]) -> None:
        self._name = name
        self._kind = kind
        self._attributes = attributes
        self._open: list[tuple[Span, Token[Span | None], Any]] = []

    def __enter__(self) -> Span:
        opened = _start(self._name, self._kind, dict(self._attributes))
        self._open.append(opened)
        return opened[0]

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        _end(*self._open.pop(), error)

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(kind, error, tb)

    def __call__(self, fn: F) -> F:
        name, kind, attributes = self._name, self._kind, self._attributes
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with _Scope(name, kind, attributes):
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _Scope(name, kind, attributes):
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]


def span(
    name: str, *, kind: str = "internal", attributes: Mapping[str, Any] | None = None, **attrs: Any
) -> _Scope:
    """A span named ``name`` with attributes ``attrs`` (dotted OTel names go in ``attributes``).

    Use as ``with``, ``async with`` or a decorator; ``kind`` is one of OTel's span kinds. Each
    ``with span(...)`` opens one span; the decorator opens one per call (a scope object kept and entered
    from several tasks at once would pair their ends wrongly: call ``span`` again instead).
    """
    return _Scope(name, kind, {**(attributes or {}), **attrs})
