"""The web integrations' request spans (``opswatch.integrations``), with OTel's HTTP attribute names.

A request is a ``server`` span named ``"<METHOD> <route template>"`` with ``http.request.method``,
``http.route`` and ``http.response.status_code``; a 5xx answer or an unhandled exception makes it an
``error``. An incoming W3C ``traceparent`` makes it a child of the caller's span, in the caller's trace.
Request spans exist only when a sink takes spans (the server sink): without one, requests cost what
they cost before.
"""

from __future__ import annotations

import time

from .._runtime import STATE
from ._span import Span, send


def spans_wanted() -> bool:
    """Whether any sink of the running configuration takes spans."""
    runtime = STATE.runtime
    return runtime is not None and any(getattr(sink, "accepts_spans", False) for sink in runtime.sinks)


def request_span(trace: tuple[str, str] | None) -> Span:
    """A started server span, continuing ``trace`` (trace id, parent span id) when given."""
    if trace is None:
        return Span("", {}, "server")
    return Span("", {}, "server", trace[0], trace[1])


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
