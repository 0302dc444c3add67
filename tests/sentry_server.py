"""A stand-in for Sentry's ingest: a real HTTP server on 127.0.0.1 that speaks the envelope protocol.

It accepts ``POST /api/<project>/envelope/`` (and ``/store/``), undoes gzip, deflate, brotli or zstd,
reads the body whether it has a Content-Length or is chunked, parses the envelope (a header line, then
items whose payload runs ``length`` bytes or, without ``length``, to the next newline) and keeps every
item. Tests wait for what they expect with ``wait_for``::

    with FakeSentry() as sentry:
        sentry_sdk.init(dsn=sentry.dsn, ...)
        ...
        events = sentry.wait_for(lambda s: s.items_of("event"), timeout=5)
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import brotli
import zstandard

T = TypeVar("T")


@dataclass
class Item:
    """One envelope item: its header, raw payload, and the payload as JSON when it is JSON."""

    headers: dict[str, Any]
    payload: bytes
    json: Any = None

    @property
    def type(self) -> str:
        return str(self.headers.get("type", ""))


@dataclass
class Envelope:
    """One received envelope: its header, items, and how the request looked."""

    headers: dict[str, Any]
    items: list[Item]
    request_headers: dict[str, str] = field(default_factory=dict)
    path: str = ""


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[Item]]:
    """Split an envelope into its header and items (lengths honoured; the final newline optional)."""
    newline = body.find(b"\n")
    header_line, rest = (body, b"") if newline < 0 else (body[:newline], body[newline + 1 :])
    headers = json.loads(header_line) if header_line.strip() else {}
    items: list[Item] = []
    while rest.strip():
        newline = rest.find(b"\n")
        if newline < 0:
            raise ValueError("item header without a payload")
        item_headers = json.loads(rest[:newline])
        rest = rest[newline + 1 :]
        length = item_headers.get("length")
        if length is not None:
            payload, rest = rest[:length], rest[length:]
            if rest.startswith(b"\n"):
                rest = rest[1:]
        else:
            newline = rest.find(b"\n")
            payload, rest = (rest, b"") if newline < 0 else (rest[:newline], rest[newline + 1 :])
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = None
        items.append(Item(item_headers, payload, parsed))
    return headers, items


def decode_body(body: bytes, encoding: str) -> bytes:
    """Undo a Content-Encoding."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        return bytes(brotli.decompress(body))
    if encoding == "zstd":
        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(body))
    raise ValueError(f"unknown Content-Encoding {encoding!r}")


class FakeSentry:
    """The server. ``dsn`` points the real sentry-sdk at it; ``envelopes`` holds what arrived."""

    def __init__(self, project: int = 1, key: str = "publickey") -> None:
        self.project = project
        self.key = key
        self.envelopes: list[Envelope] = []
        self.errors: list[str] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._serve, name="fake-sentry", daemon=True)

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.02)  # short, so that shutdown() is quick

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def dsn(self) -> str:
        return f"http://{self.key}@127.0.0.1:{self.port}/{self.project}"

    def __enter__(self) -> FakeSentry:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- what arrived --------------------------------------------------------------------------------

    def items(self) -> list[Item]:
        with self._changed:
            return [item for envelope in self.envelopes for item in envelope.items]

    def items_of(self, kind: str) -> list[Any]:
        """The JSON payloads of every item of type ``kind`` (``event``, ``check_in`` ...), in order."""
        return [item.json for item in self.items() if item.type == kind]

    def wait_for(self, probe: Callable[[FakeSentry], T], timeout: float = 30.0) -> T:
        """Return ``probe(self)`` as soon as it is truthy; fail the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = probe(self)
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"the fake Sentry did not get what was expected within {timeout}s; "
                        f"it got {[item.type for item in self.items()]} (errors: {self.errors})"
                    )
                self._changed.wait(left)

    # -- the HTTP side -------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self._read_body()
                path = self.path.split("?")[0]
                if not (path.endswith("/envelope/") or path.endswith("/store/")):
                    self._answer(404, {"detail": "not found"})
                    return
                try:
                    body = decode_body(raw, self.headers.get("Content-Encoding", ""))
                    if path.endswith("/store/"):
                        event = json.loads(body)
                        headers: dict[str, Any] = {"event_id": event.get("event_id")}
                        items = [Item({"type": "event"}, body, event)]
                    else:
                        headers, items = parse_envelope(body)
                except Exception as err:
                    with fake._changed:
                        fake.errors.append(f"{type(err).__name__}: {err}")
                        fake._changed.notify_all()
                    self._answer(400, {"detail": str(err)})
                    return
                envelope = Envelope(headers, items, dict(self.headers.items()), path)
                with fake._changed:
                    fake.envelopes.append(envelope)
                    fake._changed.notify_all()
                self._answer(200, {"id": headers.get("event_id")} if headers.get("event_id") else {})

        return Handler
