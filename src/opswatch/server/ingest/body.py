"""Reading an ingest body within bounds, and decompressing it without ever inflating past a limit.

``read_body`` streams the request (chunked bodies with no Content-Length, as the Node SDK sends them, are
the normal case) and stops at ``limit`` bytes. ``decompress`` undoes ``Content-Encoding`` (gzip, deflate,
br, zstd, or a list of them) and asks each decoder for at most ``limit + 1`` bytes, so a small body that
would inflate to gigabytes costs at most ``limit`` bytes of memory before it is refused. A gzip body sent
without a Content-Encoding header is recognized by its magic bytes.
"""

from __future__ import annotations

import io
import zlib

import brotli
import zstandard
from starlette.requests import Request

from ..limits import MAX_BODY_BYTES


class IngestError(Exception):
    """A request that cannot be taken: HTTP ``status``, a metric ``code`` and a human ``reason``."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


def _too_large(what: str, limit: int) -> IngestError:
    return IngestError(413, "too_large", f"{what} is over the limit of {limit:,} bytes")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body of ``request``, refused with 413 past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise IngestError(400, "bad_request", "Content-Length is not a number") from None
        if size > limit:
            raise _too_large("the request body", limit)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large("the request body", limit)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """``body`` with every listed encoding undone, refused past ``limit`` decompressed bytes.

    Raises ``IngestError``: 415 for an unknown encoding, 400 for a corrupt stream, 413 past the limit.
    """
    encodings = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
    if not encodings and body[:2] == b"\x1f\x8b":
        encodings = ["gzip"]
    for encoding in reversed(encodings):  # the last encoding applied is undone first
        if encoding in ("identity", ""):
            continue
        decoder = _DECODERS.get(encoding)
        if decoder is None:
            raise IngestError(415, "bad_encoding", f"unsupported Content-Encoding {encoding!r}")
        try:
            body = decoder(body, limit)
        except IngestError:
            raise
        except Exception as err:
            raise IngestError(400, "bad_encoding", f"the body is not valid {encoding}: {err}") from None
    if len(body) > limit:
        raise _too_large("the decompressed body", limit)
    return body


def _zlib(body: bytes, limit: int, wbits: int) -> bytes:
    """Inflate zlib, raw deflate or gzip (``wbits``), concatenated gzip members included."""
    parts: list[bytes] = []
    total = 0
    data = body
    while data:
        decoder = zlib.decompressobj(wbits)
        out = decoder.decompress(data, limit + 1 - total)
        total += len(out)
        parts.append(out)
        if total > limit:
            raise _too_large("the decompressed body", limit)
        if not decoder.eof:
            if decoder.unconsumed_tail:  # more output than the budget: a bomb or simply too big
                raise _too_large("the decompressed body", limit)
            raise ValueError("the stream ends early")
        data = decoder.unused_data
        if wbits > 0 and data.strip(b"\x00") == b"":  # padding after the last gzip member
            break
    return b"".join(parts)


def _gzip(body: bytes, limit: int) -> bytes:
    return _zlib(body, limit, 16 + zlib.MAX_WBITS)


def _deflate(body: bytes, limit: int) -> bytes:
    # HTTP's "deflate" is zlib-wrapped; some clients send raw deflate anyway.
    try:
        return _zlib(body, limit, zlib.MAX_WBITS)
    except zlib.error:
        return _zlib(body, limit, -zlib.MAX_WBITS)


def _brotli(body: bytes, limit: int) -> bytes:
    decoder = brotli.Decompressor()
    out = decoder.process(body, output_buffer_limit=limit + 1)
    parts = [out]
    total = len(out)
    while total <= limit and not decoder.can_accept_more_data():
        more = decoder.process(b"", output_buffer_limit=limit + 1 - total)
        if not more:
            break
        parts.append(more)
        total += len(more)
    if total > limit:
        raise _too_large("the decompressed body", limit)
    if not decoder.is_finished():
        raise ValueError("the stream ends early")
    return b"".join(parts)


def _zstd(body: bytes, limit: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True)
    parts: list[bytes] = []
    total = 0
    with reader:
        while True:
            chunk = reader.read(min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
            if total > limit:
                raise _too_large("the decompressed body", limit)
    return b"".join(parts)


_DECODERS = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": _brotli,
    "zstd": _zstd,
}
