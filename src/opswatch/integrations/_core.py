"""What every web-framework integration does, written once; each middleware only adapts its framework.

Per request: a request id (the client's ``X-Request-ID`` when it looks sane, else a fresh one, echoed in
the response), the W3C ``traceparent`` (or Sentry's ``sentry-trace``) read into ``trace_id``/``span_id``,
context fields bound for the request's duration (``request_id``, ``method``, ``route``, ``client_ip``,
and ``status`` once known), one performance measurement with the API thresholds named
``"<METHOD> <route template>"``, and an unhandled exception logged once (with the request's headers and
query, redacted like every record) before the framework gets it back.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from .._runtime import STATE
from ..perf import _config as perf_config
from ..perf._report import report
from ..record import ERROR, new_event_id
from ..tracing._http import end_request_span, request_span, spans_wanted
from ..tracing._propagation import parse_incoming
from ..tracing._span import Span

#: The header that carries the request id, in and out.
REQUEST_ID_HEADER: Final = "x-request-id"

#: A request id we accept from a client: short, no spaces or control characters, nothing to inject.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")

#: The operation of the record written for an unhandled exception.
UNHANDLED_OPERATION: Final = "http.unhandled_exception"

#: Attribute set on an exception once an integration has logged it, so that it is logged only once.
LOGGED_MARK: Final = "__opswatch_logged__"

#: Most headers and query parameters copied into an exception record.
_MAX_ITEMS: Final = 64

_UNMATCHED: Final = "<unmatched>"


def request_id_from(value: str | None) -> str:
    """The client's request id when it is sane, else a new one (32 hex characters, unique per process
    and across processes, made like event ids: ``uuid4`` costs a system call per request)."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return new_event_id()


def was_logged(error: BaseException) -> bool:
    """Whether an integration already logged this exception."""
    return bool(getattr(error, LOGGED_MARK, False))


def mark_logged(error: BaseException) -> None:
    """Remember that ``error`` was logged (exceptions that refuse attributes are simply not marked)."""
    with contextlib.suppress(Exception):
        setattr(error, LOGGED_MARK, True)


def _limited(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in items:
        if len(out) >= _MAX_ITEMS:
            break
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


class RequestTracking:
    """The options of one middleware instance, and the factory of its per-request state.

    ``trust_request_id``: take the client's ``X-Request-ID`` when sane (else always generate one).
    ``record_client``: put the client address in the context as ``client_ip`` (redaction settings
    apply to it like to any field).
    """

    __slots__ = ("record_client", "trust_request_id")

    def __init__(self, *, trust_request_id: bool = True, record_client: bool = True) -> None:
        self.trust_request_id = trust_request_id
        self.record_client = record_client

    def begin(
        self,
        method: str,
        request_id: str | None,
        traceparent: str | None,
        client: str | None,
        route: str | None,
        *,
        tracestate: str | None = None,
        sentry_trace: str | None = None,
        baggage: str | None = None,
    ) -> ActiveRequest:
        """Start tracking one request (``request_id``, ``traceparent`` ... are the raw header values;
        ``sentry-trace`` with its ``baggage`` continues a Sentry trace when there is no ``traceparent``)."""
        rid = request_id_from(request_id if self.trust_request_id else None)
        fields: dict[str, Any] = {"request_id": rid, "method": method}
        if route is not None:
            fields["route"] = route
        trace = parse_incoming(traceparent, tracestate, sentry_trace, baggage)
        if trace is not None:
            fields["trace_id"], fields["span_id"] = trace.trace_id, trace.span_id
        if client and self.record_client:
            fields["client_ip"] = client
        active = ActiveRequest(rid, method, fields)
        if spans_wanted():  # the request is a server span: logs inside carry its ids
            active.span = request_span(trace)
            fields["trace_id"], fields["span_id"] = active.span.trace_id, active.span.span_id
        return active


class ActiveRequest:
    """One request in flight: its id, its context fields, when it started, and how it ended."""

    __slots__ = ("error", "fields", "finished", "method", "request_id", "span", "start", "status")

    def __init__(self, request_id: str, method: str, fields: dict[str, Any]) -> None:
        self.request_id = request_id
        self.method = method
        #: The fields bound to the context for the request (and put on its measurement).
        self.fields = fields
        self.status: int | None = None
        self.error: BaseException | None = None
        self.finished = False
        self.start = perf_config.CURRENT.clock()
        #: The request's server span, when a sink takes spans (``opswatch.tracing``).
        self.span: Span | None = None

    @property
    def route(self) -> str | None:
        """The route template, once known."""
        route = self.fields.get("route")
        return route if isinstance(route, str) else None

    def set_route(self, route: str | None) -> None:
        """Record the route template (when the framework resolves it only after routing)."""
        if route:
            self.fields["route"] = route

    def log_exception(
        self,
        error: BaseException,
        *,
        path: str | None = None,
        query: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Log an unhandled exception once, with the request's context; never raises.

        Only ``Exception``s are logged: a cancelled task or ``KeyboardInterrupt`` is not the app failing.
        """
        self.error = error
        if not isinstance(error, Exception) or was_logged(error):
            return
        mark_logged(error)
        try:
            fields: dict[str, Any] = {**self.fields, "operation": UNHANDLED_OPERATION}
            if path is not None:
                fields["path"] = path
            if query:
                fields["query"] = _limited(parse_qsl(query, keep_blank_values=True))
            header_map = _limited((k.lower(), v) for k, v in headers)
            if header_map:
                fields["headers"] = header_map  # redaction takes out authorization, cookies, api keys ...
            route = self.route or _UNMATCHED
            STATE.emit(ERROR, "http", f"Unhandled exception in {self.method} {route}", None, fields, error)
        except Exception:
            pass

    def finish(self, status: int | None, error: BaseException | None = None) -> None:
        """Write the request's measurement (API thresholds); only the first call counts."""
        if self.finished:
            return
        self.finished = True
        try:
            seconds = perf_config.CURRENT.clock() - self.start
            error = error or self.error
            if status is None:
                status = 500 if error is not None else 0
            self.status = status
            fields: Mapping[str, Any] = {**self.fields, "status": status}
            report("api", f"{self.method} {self.route or _UNMATCHED}", seconds, fields, error, span=False)
            if self.span is not None:
                end_request_span(self.span, self.method, self.route, status, error)
        except Exception:
            pass
