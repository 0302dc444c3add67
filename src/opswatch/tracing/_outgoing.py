"""Outgoing HTTP calls as ``client`` spans carrying the trace headers (``opswatch.integrations.httpx`` and
``opswatch.integrations.requests`` hook a client's send into ``around``/``around_async``).

Only calls made inside a trace (an open span, or a trace bound by the web middleware) are touched:
calls made elsewhere, such as the SDK's own shipping thread, pass through as they are. A call is a
``client`` span named after its method, with OTel's ``http.request.method``, ``server.address``,
``server.port``, ``url.full`` (no credentials, query values replaced by ``REDACTED``) and
``http.response.status_code``; a 4xx/5xx answer or an exception makes it an ``error``. The trace headers
(``opswatch.tracing._propagation``) are added only when the URL's origin is a propagation target, and
taken off the request again once it is sent, so a redirect elsewhere does not carry them on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import Token
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .._context import _fields
from .._runtime import _internal_error
from ._propagation import outgoing_headers, propagates_to, redacted_url, targets
from ._span import Span, _current, _end, _start

R = TypeVar("R")


class _Call:
    """One outgoing call in flight: its span, and the headers it had before ours were added."""

    __slots__ = ("fields_token", "headers", "previous", "span", "token")

    def __init__(self, span: Span, token: Token[Span | None], fields_token: Any,
                 headers: MutableMapping[str, str]) -> None:  # fmt: skip
        self.span, self.token, self.fields_token = span, token, fields_token
        self.headers = headers
        self.previous: dict[str, str | None] = {}

    def finish(self, status: int | None, error: BaseException | None) -> None:
        try:
            for name, value in self.previous.items():
                if value is None:
                    self.headers.pop(name, None)
                else:
                    self.headers[name] = value
            if status is not None:
                self.span.attributes["http.response.status_code"] = status
                if status >= 400 and error is None:
                    self.span.set_status("error")
            _end(self.span, self.token, self.fields_token, error)
        except Exception as err:
            _internal_error(err)


def begin(method: str, url: str, headers: MutableMapping[str, str]) -> _Call | None:
    """Open the client span of a call and add the trace headers, or None outside a trace. Never raises."""
    try:
        if _current.get() is None and "trace_id" not in _fields.get():
            return None
        patterns = targets()
        if not patterns:
            return None  # the integration was installed by an earlier configuration
        parts = urlsplit(url)
        attributes: dict[str, Any] = {"http.request.method": method, "url.full": redacted_url(url)}
        if parts.hostname:
            attributes["server.address"] = parts.hostname
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        if port:
            attributes["server.port"] = port
        made, token, fields_token = _start(method, "client", attributes)
        call = _Call(made, token, fields_token, headers)
        if propagates_to(url, patterns):
            added = outgoing_headers(made.trace_id, made.span_id, made.sampled, made.tracestate,
                                     made.baggage, headers.get("baggage"))  # fmt: skip
            for name, value in added.items():
                call.previous[name] = headers.get(name)
                headers[name] = value
        return call
    except Exception as err:
        _internal_error(err)
        return None


def around(method: str, url: str, headers: MutableMapping[str, str], send: Callable[[], R]) -> R:
    """Run ``send()`` as one outgoing call (see the module docstring); its response has ``status_code``."""
    call = begin(method, url, headers)
    if call is None:
        return send()
    try:
        result = send()
    except BaseException as err:
        call.finish(None, err)
        raise
    call.finish(_status(result), None)
    return result


async def around_async(
    method: str, url: str, headers: MutableMapping[str, str], send: Callable[[], Awaitable[R]]
) -> R:
    """``around`` for an awaited send."""
    call = begin(method, url, headers)
    if call is None:
        return await send()
    try:
        result = await send()
    except BaseException as err:
        call.finish(None, err)
        raise
    call.finish(_status(result), None)
    return result


def _status(response: Any) -> int | None:
    """The response's ``status_code`` (httpx's and requests' responses both have one), or None."""
    try:
        return int(response.status_code)
    except Exception:
        return None
