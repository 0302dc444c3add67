"""Reading an ingest body within bounds, and decompressing it without ever inflating past a limit.

``read_body`` streams the request (chunked bodies with no Content-Length, as the Node SDK sends them, are
the normal case) and stops at ``limit`` bytes. ``decompress`` undoes ``Content-Encoding`` (gzip, deflate,
br, zstd, or a list of them) and asks each decoder for at most ``limit + 1`` bytes, so a small body that
would inflate to gigabytes costs at most ``limit`` bytes of memory before it is refused. A gzip body sent
without a Content-Encoding header is recognized by its magic bytes.

``BodyReader`` is the same read in steps, so a handler can authenticate before it takes the body: a
tunnelled Sentry envelope carries its key in its first line, which ``envelope_dsn`` finds in the first
``MAX_UNAUTHENTICATED_BYTES`` (inflating at most that many bytes). Until a request is authenticated the
server reads and inflates no more than that. The whole body must arrive within the reader's deadline
(408 otherwise: a chunked body that never ends does not hold a connection for ever); a client that goes
away mid-body is ``IngestError(499)``, a client-side outcome, not a server error. ``inflate`` runs
``decompress`` in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import io
import zlib
from collections.abc import AsyncIterator

import brotli
import orjson
import zstandard
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from ..limits import BODY_TIMEOUT_SECONDS, MAX_BODY_BYTES, MAX_UNAUTHENTICATED_BYTES


class IngestError(Exception):
    """A request that cannot be taken: HTTP ``status``, a metric ``code`` and a human ``reason``."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


#: Bytes inflated per call: decoders asked for everything at once grow one buffer and copy it at the
#: end, which doubles the peak memory of a body at the limit.
_STEP = 1 << 20


def _too_large(what: str, limit: int) -> IngestError:
    return IngestError(413, "too_large", f"{what} is over the limit of {limit:,} bytes")


async def read_body(
    request: Request, limit: int = MAX_BODY_BYTES, timeout: float = BODY_TIMEOUT_SECONDS
) -> bytes:
    """The raw body of ``request``, refused with 413 past ``limit`` bytes, 408 past ``timeout`` s."""
    return await BodyReader(request, limit=limit, timeout=timeout).read()


class BodyReader:
    """One request's body, read on demand: ``prefix(n)`` reads only as far as it must, ``read()`` all.

    Bounds (each an ``IngestError``): a declared Content-Length over ``limit`` is refused before any
    byte is read (413), a streamed body is refused as soon as it passes ``limit`` (413); the whole body
    must arrive within ``timeout`` seconds of the reader's creation (408); a client that disconnects
    mid-body raises status 499.
    """

    def __init__(
        self, request: Request, *, limit: int = MAX_BODY_BYTES, timeout: float = BODY_TIMEOUT_SECONDS
    ) -> None:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                raise IngestError(400, "bad_request", "Content-Length is not a number")
            if int(declared) > limit:
                raise _too_large("the request body", limit)
        self._stream: AsyncIterator[bytes] = request.stream()
        self._limit = limit
        self._timeout = timeout
        self._deadline = asyncio.get_running_loop().time() + timeout
        self._chunks: list[bytes] = []
        self._size = 0
        self._ended = False

    async def _more(self) -> None:
        try:
            async with asyncio.timeout_at(self._deadline):
                chunk = await anext(self._stream)
        except StopAsyncIteration:
            self._ended = True
            return
        except TimeoutError:
            raise IngestError(
                408, "body_timeout", f"the request body did not arrive within {self._timeout:g} s"
            ) from None
        except ClientDisconnect:
            raise IngestError(499, "client_disconnected", "the client went away mid-body") from None
        self._size += len(chunk)
        if self._size > self._limit:
            raise _too_large("the request body", self._limit)
        if chunk:
            self._chunks.append(chunk)

    async def prefix(self, size: int) -> bytes:
        """At least the first ``size`` bytes (the whole body when it is shorter); reads no more chunks
        than that takes."""
        while self._size < size and not self._ended:
            await self._more()
        return b"".join(self._chunks)[:size]

    async def read(self) -> bytes:
        """The whole body."""
        while not self._ended:
            await self._more()
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def inflate(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """``decompress`` in a worker thread when there is anything to undo (the event loop keeps serving)."""
    if not content_encoding and body[:2] != b"\x1f\x8b":
        return body
    return await run_in_threadpool(decompress, body, content_encoding, limit)


def envelope_dsn(
    prefix: bytes, content_encoding: str | None, limit: int = MAX_UNAUTHENTICATED_BYTES
) -> str | None:
    """The ``dsn`` of the envelope header in ``prefix`` (the body's first bytes), or None.

    At most ``limit`` bytes are inflated, whatever the body would inflate to; the header line must end
    within them. Stacked encodings and unreadable prefixes give None (the request then has no key).
    """
    encodings = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
    encodings = [e for e in encodings if e != "identity"]
    if not encodings and prefix[:2] == b"\x1f\x8b":
        encodings = ["gzip"]
    if len(encodings) > 1:
        return None
    try:
        head = _head(prefix, encodings[0], limit) if encodings else prefix[:limit]
    except Exception:  # a corrupt or unknown stream: no key can be read from it
        return None
    end = head.find(b"\n")
    try:  # without a newline, only a body that is all header parses
        header = orjson.loads(head if end < 0 else head[:end])
    except orjson.JSONDecodeError:
        return None
    dsn = header.get("dsn") if isinstance(header, dict) else None
    return dsn if isinstance(dsn, str) else None


def _head(data: bytes, encoding: str, limit: int) -> bytes:
    """At most ``limit`` bytes of the start of ``data`` decoded; ``data`` may be cut anywhere."""
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, limit)
    if encoding == "deflate":
        try:
            return zlib.decompressobj(zlib.MAX_WBITS).decompress(data, limit)
        except zlib.error:
            return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, limit)
    if encoding == "br":
        out: bytes = brotli.Decompressor().process(data, output_buffer_limit=limit)
        return out
    if encoding == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=False)
        with reader:
            found: bytes = reader.read(limit)
            return found
    raise ValueError(encoding)


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
        pending = data
        while not decoder.eof:  # in steps: one large output buffer would be joined at twice the size
            out = decoder.decompress(pending, min(_STEP, limit + 1 - total))
            total += len(out)
            parts.append(out)
            if total > limit:  # more output than the budget: a bomb or simply too big
                raise _too_large("the decompressed body", limit)
            pending = decoder.unconsumed_tail
            if not out and not pending:
                break
        if not decoder.eof:
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
    out = decoder.process(body, output_buffer_limit=min(_STEP, limit + 1))
    parts = [out]
    total = len(out)
    while total <= limit and not decoder.can_accept_more_data():
        more = decoder.process(b"", output_buffer_limit=min(_STEP, limit + 1 - total))
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
            chunk = reader.read(min(_STEP, limit + 1 - total))
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
