"""The HTTP transport for webhooks: httpx, a timeout on every request, and no redirects.

One ``httpx.Client`` per transport, created on first use by the thread that sends (the notifier's
worker). After ``fork()`` the child drops the parent's client without closing it (its sockets belong to
the parent) and makes its own.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..._version import __version__
from ..limits import HTTP_CONNECT_TIMEOUT, MAX_ANSWER_BODY
from .base import Answer, TransportError, clip_body

if TYPE_CHECKING:
    import httpx

USER_AGENT = f"opswatch/{__version__}"

_live: weakref.WeakSet[HttpTransport] = weakref.WeakSet()


class HttpTransport:
    """POSTs with httpx. Redirects are answers (never followed); the timeout is the caller's, always set."""

    def __init__(self) -> None:
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        _live.add(self)

    def _get_client(self) -> httpx.Client:
        client = self._client
        if client is None:
            import httpx

            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(follow_redirects=False, headers={"user-agent": USER_AGENT})
                client = self._client
        return client

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        """Send one POST; raise ``TransportError`` when no HTTP answer came back in time."""
        import httpx

        client = self._get_client()
        limits = httpx.Timeout(timeout, connect=min(timeout, HTTP_CONNECT_TIMEOUT))
        try:
            with client.stream("POST", url, content=body, headers=dict(headers), timeout=limits) as response:
                raw = b""
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) >= MAX_ANSWER_BODY:
                        break
                return Answer(
                    status=response.status_code,
                    body=clip_body(raw),
                    headers={k.lower(): v for k, v in response.headers.items()},
                )
        except httpx.HTTPError as err:
            raise TransportError(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from None

    def close(self) -> None:
        """Close the client (and its connections)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _forget_after_fork() -> None:
    for transport in list(_live):
        transport._client = None
        transport._lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
