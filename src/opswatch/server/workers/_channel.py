"""The channel between the owner and one worker: an anonymous socketpair, frames of pickled messages.

A frame is a 4-byte big-endian length and a pickled list of messages. ``send`` only queues; every
message queued during one turn of the event loop leaves in one frame, so a worker that answers many
requests at once hands their records over in one batch, and the owner's replies travel the same way.

Pickle is safe here because nothing but the two processes holds an end: the pair is created by the
owner and inherited by the worker it starts (no socket file, no port). A message is a tuple whose first
item names it (see ``opswatch.server.workers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import struct
import threading
from typing import Any

_HEADER = struct.Struct(">I")
#: Frames past this size are refused by the reader: a worker sends at most a request's records (bounded
#: by the ingest limits) per message, so only a bug can produce one.
MAX_FRAME_BYTES = 1 << 30


class ChannelClosed(Exception):
    """The other process closed its end (it stopped or died)."""


class Channel:
    """One end of a socketpair, used from one event loop (``open`` inside it)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._outbox: list[Any] = []
        self._loop = asyncio.get_running_loop()
        self._from_threads: list[Any] = []
        self._threads_lock = threading.Lock()

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        """The channel over ``sock``, in the running loop."""
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 20)
        return cls(reader, writer)

    @property
    def closed(self) -> bool:
        """True once this end is closed or the peer went away."""
        return self._writer.is_closing()

    def send(self, message: Any) -> None:
        """Queue ``message``; it leaves with the others queued in this turn of the loop. Call in the loop;
        a message for a closed channel is dropped (its peer is gone and waits for nothing)."""
        if not self._outbox:
            self._loop.call_soon(self._flush)
        self._outbox.append(message)

    def send_threadsafe(self, message: Any) -> None:
        """``send`` from any thread (one wake-up of the loop for everything queued before it runs)."""
        with self._threads_lock:
            self._from_threads.append(message)
            if len(self._from_threads) > 1:
                return
        self._loop.call_soon_threadsafe(self._take_from_threads)

    def _take_from_threads(self) -> None:
        with self._threads_lock:
            messages, self._from_threads = self._from_threads, []
        for message in messages:
            self.send(message)

    def _flush(self) -> None:
        batch, self._outbox = self._outbox, []
        if not batch or self._writer.is_closing():
            return
        data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_HEADER.pack(len(data)) + data)

    async def receive(self) -> list[Any]:
        """The next frame's messages; ``ChannelClosed`` when the peer closed its end."""
        try:
            (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
            if size > MAX_FRAME_BYTES:
                raise ChannelClosed(f"a frame of {size} bytes is past the channel's limit")
            messages: list[Any] = pickle.loads(await self._reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError) as err:
            raise ChannelClosed(str(err)) from None
        return messages

    async def drain(self) -> None:
        """Wait until what was sent has been handed to the system (ignored when the peer is gone)."""
        self._flush()
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    def close(self) -> None:
        """Close this end (what was queued is sent first, as far as the peer still reads)."""
        self._flush()
        self._writer.close()


def read_frame_blocking(sock: socket.socket) -> list[Any]:
    """One frame read from a blocking socket (the worker's first message, before its loop runs)."""

    def exactly(size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise ChannelClosed("the owner closed the channel before the first frame")
            data += chunk
        return bytes(data)

    (size,) = _HEADER.unpack(exactly(_HEADER.size))
    messages: list[Any] = pickle.loads(exactly(size))
    return messages
