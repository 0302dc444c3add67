"""ASGI middleware for Starlette and FastAPI (and any ASGI app)::

    from opswatch.integrations.asgi import OpswatchMiddleware
    app.add_middleware(OpswatchMiddleware)          # Starlette / FastAPI
    app = OpswatchMiddleware(app)                   # any ASGI app

Each HTTP request gets a request id (echoed as ``X-Request-ID``), its ``traceparent`` read, context bound
while it runs (``request_id``, ``method``, ``route``, ``client_ip``, then ``status``), one measurement
with the API thresholds named ``"GET /donations/{donation_id}"``, and an unhandled exception logged once
and re-raised. The route template is found before the handler runs by asking the app's routes (Starlette
routes, mounts, FastAPI's included routers), so that the handler's own records carry it too; pass
``route_resolver=`` for other frameworks. Websocket traffic passes through untouched.

Lifespan traffic passes through too, except that once the app has run its shutdown handlers (it sends
``lifespan.shutdown.complete``), the middleware delivers what opswatch holds, for up to
``STOP_TIMEOUT`` seconds, and spools the rest for the next run, before the server goes on stopping:
uvicorn ends a process stopped by SIGTERM without running ``atexit``. An app that does not use the
middleware calls ``flush_on_shutdown()`` at the end of its own lifespan::

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        flush_on_shutdown()
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from .._context import _fields as _context_fields
from .._limits import STOP_TIMEOUT
from .._stops import flush_at_stop
from ..tracing._span import _current as _current_span
from ..tracing._span import bind as bind_span
from ._core import REQUEST_ID_HEADER, RequestTracking

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RouteResolver = Callable[[Scope], "str | None"]

_REQUEST_ID_BYTES = REQUEST_ID_HEADER.encode()
_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate", b"sentry-trace", b"baggage"})
_FULL = 2  # starlette.routing.Match.FULL; read as a number so this module does not need Starlette


class OpswatchMiddleware:
    """Pure ASGI middleware: see the module docstring. Options as ``RequestTracking``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        trust_request_id: bool = True,
        record_client: bool = True,
        route_resolver: RouteResolver | None = None,
    ) -> None:
        self.app = app
        self.tracking = RequestTracking(trust_request_id=trust_request_id, record_client=record_client)
        self.route_resolver = route_resolver or resolve_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _flushing_at_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_headers: Sequence[tuple[bytes, bytes]] = scope.get("headers") or ()
        request_id = None
        trace_headers: dict[bytes, str] = {}
        for name, value in raw_headers:
            lowered = name.lower()
            if lowered == _REQUEST_ID_BYTES:
                request_id = value.decode("latin-1")
            elif lowered in _TRACE_HEADERS:
                trace_headers[lowered] = value.decode("latin-1")
        client = scope.get("client")
        request = self.tracking.begin(
            scope.get("method", "GET"),
            request_id,
            trace_headers.get(b"traceparent"),
            client[0] if client else None,
            self._route(scope),
            tracestate=trace_headers.get(b"tracestate"),
            sentry_trace=trace_headers.get(b"sentry-trace"),
            baggage=trace_headers.get(b"baggage"),
        )
        echoed = request.request_id.encode("latin-1")

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                request.status = status
                headers = list(message.get("headers") or ())
                if not any(name.lower() == _REQUEST_ID_BYTES for name, _ in headers):
                    headers.append((_REQUEST_ID_BYTES, echoed))
                message = {**message, "headers": headers}
                _context_fields.set({**_context_fields.get(), "status": status})
            await send(message)

        token = _context_fields.set({**_context_fields.get(), **request.fields})
        span_token = bind_span(request.span)
        try:
            await self.app(scope, receive, send_with_request_id)
        except BaseException as exc:
            if request.route is None:
                request.set_route(_route_after(scope))
            request.log_exception(
                exc,
                path=scope.get("path"),
                query=(scope.get("query_string") or b"").decode("latin-1"),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw_headers],
            )
            request.finish(request.status, exc)
            raise
        else:
            if request.route is None:
                request.set_route(_route_after(scope))
            request.finish(request.status)
        finally:
            _current_span.reset(span_token)
            _context_fields.reset(token)

    def _route(self, scope: Scope) -> str | None:
        try:
            return self.route_resolver(scope)
        except Exception:
            return None


def flush_on_shutdown(timeout: float = STOP_TIMEOUT) -> bool:
    """Deliver what opswatch holds within ``timeout`` seconds, spool the rest; call it at lifespan shutdown.

    Returns True when everything was delivered. Never raises. Logging goes on working afterwards, and
    each record is then sent as soon as it is written.
    """
    return flush_at_stop(timeout)


def _flushing_at_shutdown(send: Send) -> Send:
    async def send_after_flushing(message: Message) -> None:
        if message.get("type") in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            flush_on_shutdown()  # blocks the loop, which only waits for this answer now
        await send(message)

    return send_after_flushing


def resolve_route(scope: Scope) -> str | None:
    """The route template that will handle ``scope`` in a Starlette/FastAPI app, or None.

    Asks each route's ``matches(scope)`` as the router will, descending into mounts, hosts and FastAPI's
    included routers, and joins mount prefixes (``/api`` + ``/donations/{donation_id}``).
    """
    app = scope.get("app")
    router = getattr(app, "router", app)
    routes = getattr(router, "routes", None)
    if not routes:
        return None
    try:
        return _search(routes, scope, "")
    except Exception:
        return None


def _search(routes: Sequence[Any], scope: Scope, prefix: str) -> str | None:
    partial = None
    for route in routes:
        matches = getattr(route, "matches", None)
        if matches is None:
            continue
        match, child = matches(scope)
        level = getattr(match, "value", 0)
        if not level:
            continue
        found = _inside(route, scope, child, prefix)
        if found is None:
            continue
        if level == _FULL:
            return found
        if partial is None:
            partial = found  # e.g. the right path with another method: the router answers 405 here
    return partial


def _inside(route: Any, scope: Scope, child: Scope, prefix: str) -> str | None:
    candidates = getattr(route, "effective_candidates", None)  # FastAPI's included routers
    if callable(candidates):
        return _search(candidates(), {**scope, **child} if child else scope, prefix)
    inner = getattr(route, "routes", None)
    if inner:  # Mount, Host: the prefix as written, then the inner route
        inner_prefix = prefix + (getattr(route, "path", None) or "")
        return _search(inner, {**scope, **child} if child else scope, inner_prefix)
    # path_format is the template without convertors: /items/{id}, not /items/{id:int}
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(path, str):
        return prefix + path
    return None


def _route_after(scope: Scope) -> str | None:
    """The route the app's router recorded in the scope, for apps the pre-match could not read."""
    fastapi = scope.get("fastapi")
    if isinstance(fastapi, dict):
        effective = fastapi.get("effective_route_context")
        path = getattr(effective, "path", None)
        if isinstance(path, str):
            return path
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None
