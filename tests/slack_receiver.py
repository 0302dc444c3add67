"""A stand-in for Slack's incoming webhooks: a real HTTP server on 127.0.0.1 answering ``200 ok`` and
keeping every JSON body it received. Used by the issues tests; ``wait_for(n)`` waits for n messages."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SlackReceiver:
    """``with SlackReceiver() as slack: ... slack.url ... slack.wait_for(1)``."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with receiver._cond:
                    receiver.messages.append(body)
                    receiver._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/services/T000/B000/XXXX"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The messages once at least ``count`` arrived (or whatever arrived by ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            return list(self.messages)

    def texts(self) -> list[str]:
        """The plain-text fallback of each message."""
        with self._cond:
            return [str(m.get("text", "")) for m in self.messages]

    def __enter__(self) -> SlackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
