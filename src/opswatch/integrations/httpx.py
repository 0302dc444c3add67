"""Trace propagation for httpx (sync and async clients): ``install()``.

``opswatch.init`` calls ``install()`` when ``trace_propagation_targets`` is set; it wraps
``httpx.HTTPTransport.handle_request`` and ``httpx.AsyncHTTPTransport.handle_async_request`` (the
transports every client uses unless given another), so each network call made inside a trace is a
``client`` span and carries ``traceparent``/``sentry-trace``/``baggage`` to the propagation targets only
(``opswatch.tracing._outgoing``). Each hop of a redirect is its own call, checked against the targets on
its own. Installing twice does nothing more; with no targets configured the wrappers pass calls through.
"""

from __future__ import annotations

from ..tracing._outgoing import around, around_async

_installed = False


def install() -> bool:
    """Wrap httpx's transports; False when httpx is not importable. Idempotent."""
    global _installed
    if _installed:
        return True
    try:
        import httpx
    except ImportError:
        return False
    sync_send = httpx.HTTPTransport.handle_request
    async_send = httpx.AsyncHTTPTransport.handle_async_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = around(request.method, str(request.url), request.headers,
                                          lambda: sync_send(self, request))  # fmt: skip
        return response

    async def handle_async_request(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        return await around_async(request.method, str(request.url), request.headers,
                                  lambda: async_send(self, request))  # fmt: skip

    httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
    httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]
    _installed = True
    return True
