"""WSGI middleware, and the Flask integration built on it::

    from opswatch.integrations.wsgi import instrument_flask
    instrument_flask(app)                                   # Flask: route templates, exceptions once

    from opswatch.integrations.wsgi import OpswatchWSGIMiddleware
    application = OpswatchWSGIMiddleware(application)      # any WSGI app

Per request: a request id (echoed as ``X-Request-ID``), ``traceparent`` read, context bound while the
app runs and while its body is produced, one measurement with the API thresholds (ended when the server
closes the body), and an unhandled exception logged once and re-raised. Plain WSGI has no routes, so the
route template comes from ``route_resolver(environ)`` when given; ``instrument_flask`` takes it from
Flask's URL rule. Flask catches view errors itself: ``instrument_flask`` logs them in place of Flask's
own ``log_exception`` (so each is logged once), and lets Flask answer 500 as it always does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from .._context import _fields as _context_fields
from ..tracing._span import _current as _current_span
from ..tracing._span import bind as bind_span
from ._core import REQUEST_ID_HEADER, ActiveRequest, RequestTracking

if TYPE_CHECKING:
    from flask import Flask

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
RouteResolver = Callable[[dict[str, Any]], "str | None"]

#: Where the request in flight is kept in the WSGI environ (for framework hooks).
ENVIRON_KEY: Final = "opswatch.request"


def _headers_from(environ: dict[str, Any]) -> list[tuple[str, str]]:
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").lower(), str(value)))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").lower(), str(value)))
    return headers


class OpswatchWSGIMiddleware:
    """WSGI middleware: see the module docstring. Options as ``RequestTracking``."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        trust_request_id: bool = True,
        record_client: bool = True,
        route_resolver: RouteResolver | None = None,
    ) -> None:
        self.app = app
        self.tracking = RequestTracking(trust_request_id=trust_request_id, record_client=record_client)
        self.route_resolver = route_resolver

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        route = None
        if self.route_resolver is not None:
            try:
                route = self.route_resolver(environ)
            except Exception:
                route = None
        request = self.tracking.begin(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("HTTP_X_REQUEST_ID"),
            environ.get("HTTP_TRACEPARENT"),
            environ.get("REMOTE_ADDR"),
            route,
            tracestate=environ.get("HTTP_TRACESTATE"),
            sentry_trace=environ.get("HTTP_SENTRY_TRACE"),
            baggage=environ.get("HTTP_BAGGAGE"),
        )
        environ[ENVIRON_KEY] = request

        def start_with_request_id(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Any:
            try:
                request.status = int(status.split(" ", 1)[0])
                _context_fields.set({**_context_fields.get(), "status": request.status})
            except ValueError:
                pass
            if not any(name.lower() == REQUEST_ID_HEADER for name, _ in headers):
                headers = [*headers, ("X-Request-ID", request.request_id)]
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        token = _context_fields.set({**_context_fields.get(), **request.fields})
        span_token = bind_span(request.span)
        try:
            body = self.app(environ, start_with_request_id)
        except BaseException as exc:
            fail(request, environ, exc)
            raise
        finally:
            _current_span.reset(span_token)
            _context_fields.reset(token)
        return _Body(body, request, environ)


def fail(request: ActiveRequest, environ: dict[str, Any], error: BaseException) -> None:
    """Log ``error`` once with the request's context and end the request's measurement."""
    request.log_exception(
        error,
        path=environ.get("PATH_INFO"),
        query=environ.get("QUERY_STRING"),
        headers=_headers_from(environ),
    )
    request.finish(request.status, error)


class _Body:
    """The app's response body, produced with the request's context bound; ends the measurement."""

    __slots__ = ("_body", "_environ", "_iterator", "_request")

    def __init__(self, body: Iterable[bytes], request: ActiveRequest, environ: dict[str, Any]) -> None:
        self._body = body
        self._request = request
        self._environ = environ
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self._body)
        token = _context_fields.set({**_context_fields.get(), **self._request.fields})
        try:
            return next(self._iterator)
        except StopIteration:
            self._request.finish(self._request.status)
            raise
        except BaseException as exc:
            fail(self._request, self._environ, exc)
            raise
        finally:
            _context_fields.reset(token)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._request.finish(self._request.status)


def instrument_flask(
    app: Flask,
    *,
    trust_request_id: bool = True,
    record_client: bool = True,
) -> OpswatchWSGIMiddleware:
    """Install opswatch on a Flask app: the WSGI middleware, route templates from Flask's URL rules,
    and unhandled view errors logged once (in place of Flask's ``log_exception``). Returns the middleware.
    """
    from flask import request as flask_request

    middleware = OpswatchWSGIMiddleware(
        app.wsgi_app, trust_request_id=trust_request_id, record_client=record_client
    )
    setattr(app, "wsgi_app", middleware)  # noqa: B010 - mypy rejects assigning to a method; Flask's docs do it

    def bind_route(endpoint: str | None, values: dict[str, Any] | None) -> None:
        rule = flask_request.url_rule
        request = flask_request.environ.get(ENVIRON_KEY)
        if rule is not None and isinstance(request, ActiveRequest):
            request.set_route(rule.rule)
            _context_fields.set({**_context_fields.get(), "route": rule.rule})

    app.url_value_preprocessor(bind_route)  # runs before every before_request hook
    original = app.log_exception

    def log_exception(exc_info: tuple[type, BaseException, TracebackType] | tuple[None, None, None]) -> None:
        request = flask_request.environ.get(ENVIRON_KEY)
        error = exc_info[1]
        if isinstance(request, ActiveRequest) and error is not None:
            request.log_exception(
                error,
                path=flask_request.path,
                query=flask_request.query_string.decode("latin-1"),
                headers=list(flask_request.headers.items()),
            )
        else:
            original(exc_info)

    setattr(app, "log_exception", log_exception)  # noqa: B010 - Flask's documented override point
    return middleware
