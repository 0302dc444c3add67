"""A real HTTP server on 127.0.0.1 that answers alert deliveries as scripted (a stand-in for Slack).

``ScriptedServer([(503, "error"), (200, "ok")])`` answers the first request 503 and every later one 200
(the last step repeats). A step is ``(status, body)``, ``(status, body, headers)`` or ``HANG`` (keep the
connection open without answering until the server closes). Every request is kept in ``requests`` with
the time it arrived (real monotonic time, and the test's manual clock when one is given).
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

HANG = "hang"

Step = tuple[int, str] | tuple[int, str, dict[str, str]] | str


@dataclasses.dataclass
class Received:
    at: float
    clock_at: float | None
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return str(self.json.get("text", ""))


class ScriptedServer:
    def __init__(self, script: Sequence[Step] = ((200, "ok"),), clock: Callable[[], float] | None = None):
        self.script = list(script)
        self.clock = clock
        self.requests: list[Received] = []
        self.release = threading.Event()
        self._lock = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with outer._lock:
                    index = len(outer.requests)
                    outer.requests.append(
                        Received(
                            time.monotonic(),
                            outer.clock() if outer.clock else None,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    outer._lock.notify_all()
                step = outer.script[min(index, len(outer.script) - 1)]
                if step == HANG:
                    outer.release.wait(30)
                    self.close_connection = True
                    return
                status, text, *rest = step
                headers = rest[0] if rest else {}
                data = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/services/T000/B000/XXXX"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until at least ``count`` requests arrived."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
