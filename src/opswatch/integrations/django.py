"""Django middleware, sync and async::

    MIDDLEWARE = ["opswatch.integrations.django.OpswatchMiddleware", ...]   # first, to see everything
    OPSWATCH_MIDDLEWARE = {"trust_request_id": True, "record_client": True}  # optional

Per request: a request id (the client's ``X-Request-ID`` when sane, else new; echoed in the response and
kept on ``request.request_id``), ``traceparent`` read, context bound while the request runs
(``request_id``, ``method``, ``route`` from the URL pattern once resolved, ``client_ip``), one
measurement with the API thresholds named like ``"GET /donations/<int:pk>/"``, and an unhandled view
exception logged once (``process_exception``) before Django turns it into its 500 response.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from .._context import _fields as _context_fields
from ..config import ConfigError
from ..tracing._span import _current as _current_span
from ..tracing._span import bind as bind_span
from ._core import REQUEST_ID_HEADER, ActiveRequest, RequestTracking

_ATTRIBUTE = "_opswatch_request"
_OPTIONS = ("trust_request_id", "record_client")


def _tracking_from_settings() -> RequestTracking:
    from django.conf import settings

    options = getattr(settings, "OPSWATCH_MIDDLEWARE", None) or {}
    if not isinstance(options, Mapping):
        raise ConfigError("OPSWATCH_MIDDLEWARE", "expected a dict of middleware options")
    for key, value in options.items():
        if key not in _OPTIONS:
            known = ", ".join(_OPTIONS)
            raise ConfigError(f"OPSWATCH_MIDDLEWARE[{key!r}]", f"unknown option (known: {known})")
        if not isinstance(value, bool):
            raise ConfigError(f"OPSWATCH_MIDDLEWARE[{key!r}]", f"expected true or false, got {value!r}")
    return RequestTracking(**options)


def _route_of(request: Any) -> str | None:
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if isinstance(route, str):
        return route if route.startswith("/") else "/" + route
    return None


class OpswatchMiddleware:
    """Django middleware for WSGI and ASGI deployments: see the module docstring."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.tracking = _tracking_from_settings()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        active = self._begin(request)
        token = _context_fields.set({**_context_fields.get(), **active.fields})
        span_token = bind_span(active.span)
        try:
            response = self.get_response(request)
        except BaseException as exc:
            self._fail(active, request, exc)
            raise
        finally:
            _current_span.reset(span_token)
            _context_fields.reset(token)
        return self._done(active, request, response)

    async def _acall(self, request: Any) -> Any:
        active = self._begin(request)
        token = _context_fields.set({**_context_fields.get(), **active.fields})
        span_token = bind_span(active.span)
        try:
            response = await self.get_response(request)
        except BaseException as exc:
            self._fail(active, request, exc)
            raise
        finally:
            _current_span.reset(span_token)
            _context_fields.reset(token)
        return self._done(active, request, response)

    def process_view(
        self, request: Any, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> None:
        """Bind the resolved URL pattern as ``route`` for the rest of the request."""
        active = getattr(request, _ATTRIBUTE, None)
        route = _route_of(request)
        if isinstance(active, ActiveRequest) and route:
            active.set_route(route)
            _context_fields.set({**_context_fields.get(), "route": route})

    def process_exception(self, request: Any, exception: Exception) -> None:
        """Log the view's unhandled exception once; Django then answers as it always does."""
        active = getattr(request, _ATTRIBUTE, None)
        if isinstance(active, ActiveRequest):
            active.set_route(_route_of(request))
            _log(active, request, exception)

    def _begin(self, request: Any) -> ActiveRequest:
        meta = request.META
        active = self.tracking.begin(
            request.method or "GET",
            meta.get("HTTP_X_REQUEST_ID"),
            meta.get("HTTP_TRACEPARENT"),
            meta.get("REMOTE_ADDR"),
            None,
            tracestate=meta.get("HTTP_TRACESTATE"),
            sentry_trace=meta.get("HTTP_SENTRY_TRACE"),
            baggage=meta.get("HTTP_BAGGAGE"),
        )
        setattr(request, _ATTRIBUTE, active)
        request.request_id = active.request_id
        return active

    def _fail(self, active: ActiveRequest, request: Any, error: BaseException) -> None:
        active.set_route(_route_of(request))
        _log(active, request, error)
        active.finish(None, error)

    def _done(self, active: ActiveRequest, request: Any, response: Any) -> Any:
        active.set_route(_route_of(request))
        try:
            if not response.has_header(REQUEST_ID_HEADER):
                response[REQUEST_ID_HEADER] = active.request_id
            status = response.status_code
        except Exception:
            status = None
        active.finish(status)
        return response


def _log(active: ActiveRequest, request: Any, error: BaseException) -> None:
    try:
        headers = list(request.headers.items())
    except Exception:
        headers = []
    active.log_exception(
        error, path=request.path, query=request.META.get("QUERY_STRING"), headers=headers
    )
