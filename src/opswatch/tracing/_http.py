"""The web integrations' request spans (``opswatch.integrations``), with OTel's HTTP attribute names.

A request is a ``server`` span named ``"<METHOD> <route template>"`` with ``http.request.method``,
``http.route`` and ``http.response.status_code``; a 5xx answer or an unhandled exception makes it an
``error``. An incoming W3C ``traceparent`` (or Sentry's ``sentry-trace``) makes it a child of the
caller's span, in the caller's trace, sampled as the caller decided.
Request spans exist only when a sink takes spans (the server sink): without one, requests cost what
they cost before.
"""

from __future__ import annotations

import time
from typing import Any, Final

from .._runtime import STATE, _internal_error
from ._propagation import Incoming, head_decision
from ._span import Span, _current, _end, _start, outer_trace, routes, send


def spans_wanted() -> bool:
    """Whether any sink of the running configuration takes spans."""
    runtime = STATE.runtime
    return runtime is not None and bool(routes(runtime)[0])


#: The span kind of each performance kind (``opswatch.perf``): queries and external calls are clients.
_PERF_KINDS: Final = {"db": "client", "external": "client"}


def measured_span(kind: str, name: str, seconds: float, error: BaseException | None) -> None:
    """Send a span for one tracked call that just ended after ``seconds`` (``track_*``, timers).

    Its parent is the span open here (or the one bound in the context); ``opswatch.perf.kind`` says what
    was tracked, and a database call names its operation in ``db.query.summary`` (OTel's name for a
    low-cardinality summary of a query). Never raises.
    """
    try:
        parent = _current.get()
        outer = None if parent is not None else outer_trace()
        sampled = outer[2] if outer is not None else parent is not None and parent.sampled
        if not sampled and not routes(STATE.runtime)[1]:
            return  # not sampled, no tail sampling: nothing to build, nothing to send
        attributes: dict[str, Any] = {"opswatch.perf.kind": kind}
        if kind == "db":
            attributes["db.query.summary"] = name
        made, token, fields_token = _start(name, _PERF_KINDS.get(kind, "internal"), attributes, outer)
        made.start_ns -= int(seconds * 1e9)
        _end(made, token, fields_token, error)
    except Exception as err:
        _internal_error(err)


def request_span(incoming: Incoming | None) -> Span:
    """A started server span, continuing the caller's trace when given (its sampled flag wins, and what
    it sent to forward is kept for outgoing calls)."""
    if incoming is None:
        trace_id, parent_id, sampled = outer_trace()  # an OTel server span around the middleware
        return Span("", {}, "server", trace_id, parent_id, sampled)
    sampled = head_decision() if incoming.sampled is None else incoming.sampled
    made = Span("", {}, "server", incoming.trace_id, incoming.span_id, sampled)
    made.tracestate, made.baggage = incoming.tracestate, incoming.baggage
    return made


def end_request_span(
    made: Span, method: str, route: str | None, status: int, error: BaseException | None
) -> None:
    """End and send a request's span."""
    made.end_ns = time.time_ns()
    made.name = f"{method} {route or '<unmatched>'}"
    made.attributes["http.request.method"] = method
    if route:
        made.attributes["http.route"] = route
    if status:
        made.attributes["http.response.status_code"] = status
    if error is not None:
        made.set_status("error", f"{type(error).__name__}: {error}")
    elif status >= 500:
        made.set_status("error")
    send(made)
