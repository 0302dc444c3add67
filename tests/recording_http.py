"""A real HTTP server on 127.0.0.1 that records the headers it gets (trace propagation tests)."""

from __future__ import annotations

import http.server
import re
import threading
from typing import Any

#: The headers an outgoing call may carry a trace in.
TRACE_HEADERS = ("traceparent", "tracestate", "sentry-trace", "baggage")


class Recorder:
    """A real HTTP server on 127.0.0.1 that keeps the headers of every request; ``/redirect?to=URL``
    answers 302 to URL."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                else:
                    self.send_response(404 if self.path.startswith("/missing") else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def target(self) -> str:
        """A propagation target matching this server only (its port)."""
        return "^" + re.escape(self.origin) + "$"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
