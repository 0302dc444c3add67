"""The HTTP seam of the server sink: one request in, one response out.

``Transport.send`` is the only call the sink makes to the network (httpx's lesson: a one-method seam lets a
test swap in an in-memory transport without a mock library). It returns the server's answer whatever the
status, and raises ``TransportError`` only when no answer arrived (refused, reset, timed out, bad TLS).
Retrying, backing off and spooling are the sink's business, not the transport's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Protocol

import httpx

from .._version import __version__

USER_AGENT = f"opswatch-python/{__version__}"


@dataclasses.dataclass(frozen=True)
class Request:
    """One POST: the URL, the headers and the (already compressed) body."""

    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclasses.dataclass(frozen=True)
class Response:
    """The server's answer; header names are lower case."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""


class TransportError(Exception):
    """No answer came back: connection refused or reset, timeout, TLS failure ..."""


class Transport(Protocol):
    """Sends one request and returns the answer; raises ``TransportError`` when there is none."""

    def send(self, request: Request) -> Response:
        """POST ``request`` and return the answer, whatever its status."""
        ...

    def close(self) -> None:
        """Release connections. The transport is not used afterwards."""
        ...


class HttpxTransport:
    """The default transport: a pooled, keep-alive ``httpx.Client`` with fixed timeouts, no redirects.

    Proxy variables (``HTTPS_PROXY``, ``NO_PROXY`` ...) are honoured, as every HTTP client does.
    """

    def __init__(self, *, connect_timeout: float = 5.0, timeout: float = 15.0) -> None:
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    def send(self, request: Request) -> Response:
        try:
            answer = self._client.post(request.url, content=request.body, headers=dict(request.headers))
        except httpx.HTTPError as err:
            raise TransportError(f"{type(err).__name__}: {err}") from err
        except OSError as err:
            raise TransportError(f"{type(err).__name__}: {err}") from err
        return Response(
            answer.status_code,
            {key.lower(): value for key, value in answer.headers.items()},
            answer.content,
        )

    def close(self) -> None:
        self._client.close()


class MemoryTransport:
    """A transport that answers with ``handler(request)`` in memory and keeps every request it saw.

    For tests of code that logs through a DSN without a server: ``MemoryTransport()`` accepts everything
    with an empty 200 answer; give a handler to script other answers (or raise ``TransportError``).
    """

    def __init__(self, handler: Callable[[Request], Response] | None = None) -> None:
        self.handler = handler or (lambda request: Response(200, {}, b"{}"))
        self.requests: list[Request] = []
        self.closed = False

    def send(self, request: Request) -> Response:
        self.requests.append(request)
        return self.handler(request)

    def close(self) -> None:
        self.closed = True
