"""How uvicorn serves the app: one ``uvicorn_config(app, settings)`` for ``opswatch serve``, the demo and
the test server, so they all run with the same connection limits.

* **Headers in time.** A client gets ``header_timeout`` seconds to send a request's headers, counted
  from the connection (or from the first byte of the next request on a kept-alive connection); then the
  connection is closed. uvicorn has no such limit: a client that connects and sends nothing, or half a
  request line, held a connection and its memory for ever. ``HeaderTimeoutProtocol`` adds it.
* **Bodies in time.** Ingest bodies have their own deadline (``opswatch.server.ingest.body``, 408).
* **Idle connections** close after ``keepalive_timeout`` (uvicorn's ``timeout_keep_alive``).
* **Concurrency.** Past ``max_connections`` connections and requests in flight, uvicorn answers 503
  (its ``limit_concurrency``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .config import ServerSettings


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's headers (``header_timeout``)."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # the next request on a kept-alive connection
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(app: Any, settings: ServerSettings) -> uvicorn.Config:
    """The uvicorn configuration for ``app`` under ``settings`` (see the module docstring)."""
    protocol = type(
        "OpswatchHTTPProtocol", (HeaderTimeoutProtocol,), {"header_timeout": settings.header_timeout}
    )
    return uvicorn.Config(
        app,
        http=protocol,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=round(settings.keepalive_timeout),
        limit_concurrency=settings.max_connections,
    )
