"""The owner: the process that holds the stores, commits for its workers, and keeps them running.

``Owner(ctx, app, listen, count).run()`` blocks until SIGTERM or SIGINT. It starts the context (the
committer, the hooks, every background singleton) and ``count`` workers, each with the shared listening
socket and one end of its own channel, and serves every channel:

* ``("ingest", id, project_id, records, source)``: the redacted records go into the pipeline as they
  are (``submit(prepared=True)``); the reply ``("ok", id, Outcome)`` leaves when their group commit is
  durable and the hooks ran, ``("err", id, "overloaded"|"unavailable", reason, retry_after)`` otherwise.
* ``("spans", id, rows)``: appended to the store (off the loop), replied with how many were new.
* ``("http", id, scope, body)``: run through the owner's own app; replied with
  ``(status, headers, body)``.
* ``("metrics", 0, changes)``: a worker's counts, added to the owner's ``/metrics`` (``_metrics``).
* to the workers, ``("forget_keys", 0)`` when ingest keys changed here (their ``KeyCache`` forgets too,
  so a revoked key stops working in every process at once).

A worker that exits or dies is started again (at most once per ``WORKER_RESTART_SECONDS``, counted in
``opswatch_worker_restarts_total``): its
in-flight requests were never answered, so their clients retry, and the store's idempotency by event id
keeps a retried event single. On SIGTERM the owner sends SIGTERM to every worker, keeps serving their
channels until they have drained (``WORKER_STOP_SECONDS``, then SIGKILL), and only then stops the
context, which commits whatever is still queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import Future
from typing import Any

from starlette.types import ASGIApp, Message

from ...log import get_logger
from .. import limits
from ..context import ServerContext
from ..metrics import Counter
from ..pipeline import Outcome, Overloaded, StoreUnavailable
from ..store.base import StoreClosed
from ._channel import Channel, ChannelClosed
from ._metrics import merge

_log = get_logger("opswatch.server.workers")


@dataclasses.dataclass(eq=False)
class _Worker:
    slot: int
    process: subprocess.Popen[bytes]
    channel: Channel
    serving: asyncio.Task[None]
    started: float


class Owner:
    """Runs ``count`` workers for ``ctx`` and ``app`` on ``listen`` (see the module docstring)."""

    def __init__(self, ctx: ServerContext, app: ASGIApp, listen: socket.socket, count: int) -> None:
        self.ctx = ctx
        self.app = app
        self.listen = listen
        self.count = count
        self.sockets = listening_sockets(listen, count)
        self.workers: dict[int, _Worker] = {}
        self.restarts = Counter(
            "opswatch_worker_restarts_total", "Ingest workers started again after they ended."
        )
        ctx.metrics.add(self.restarts)
        forget = ctx.keys.forget

        def forget_everywhere() -> None:  # keys created or revoked through the API (in this process)
            forget()
            for worker in list(self.workers.values()):
                worker.channel.send_threadsafe(("forget_keys", 0))

        ctx.keys.forget = forget_everywhere  # type: ignore[method-assign]
        self._tasks: set[asyncio.Task[Any]] = set()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT, then drain the workers and close the context; the exit code."""
        try:
            asyncio.run(self._main())
        finally:
            self.ctx.close()
        return 0

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        self.ctx.start()
        for slot in range(self.count):
            await self._start(slot)
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 0.2)
            for slot, worker in list(self.workers.items()):
                if worker.process.poll() is not None and not stopping.is_set():
                    await self._restart(slot, worker)
        await self._stop_workers()

    async def _start(self, slot: int) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fds = (self.sockets[slot].fileno(), theirs.fileno())
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "opswatch.server.workers", *map(str, fds)], pass_fds=fds
            )
        finally:
            theirs.close()
        channel = await Channel.open(mine)
        channel.send(("hello", self.ctx.settings, self.ctx.default_project))
        serving = asyncio.create_task(self._serve(channel))
        self.workers[slot] = _Worker(slot, process, channel, serving, time.monotonic())

    async def _restart(self, slot: int, worker: _Worker) -> None:
        _log.warn(
            "an ingest worker ended; starting another",
            {"worker": slot, "pid": worker.process.pid, "exit_code": worker.process.returncode},
        )
        worker.channel.close()
        wait = limits.WORKER_RESTART_SECONDS - (time.monotonic() - worker.started)
        if wait > 0:
            await asyncio.sleep(wait)
        self.restarts.inc()
        await self._start(slot)

    async def _stop_workers(self) -> None:
        for worker in self.workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + limits.WORKER_STOP_SECONDS
        for worker in self.workers.values():
            while worker.process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # the channels keep being served meanwhile
            if worker.process.poll() is None:
                _log.error("an ingest worker did not stop in time", {"pid": worker.process.pid})
                worker.process.kill()
                worker.process.wait()
        for worker in self.workers.values():
            worker.channel.close()
            worker.serving.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=limits.WORKER_STOP_SECONDS)
        for sock in self.sockets[1:]:
            sock.close()

    # -- a worker's channel ---------------------------------------------------------------------

    async def _serve(self, channel: Channel) -> None:
        try:
            while True:
                for message in await channel.receive():
                    self._dispatch(channel, message)
        except ChannelClosed:
            pass

    def _dispatch(self, channel: Channel, message: tuple[Any, ...]) -> None:
        kind, rid = message[0], message[1]
        if kind == "ingest":
            self._ingest(channel, rid, message[2], message[3], message[4])
        elif kind == "spans":
            self._background(channel, rid, self._spans(message[2]))
        elif kind == "http":
            self._background(channel, rid, self._http(message[2], message[3]))
        elif kind == "metrics":
            merge(self.ctx, message[2])
        else:
            channel.send(("err", rid, "bug", f"unknown message {kind!r}", 0))

    def _ingest(self, channel: Channel, rid: int, project_id: int, records: Any, source: str) -> None:
        try:
            future = self.ctx.pipeline.submit(project_id, records, source, prepared=True)
        except Exception as err:
            channel.send(_error(rid, err))
            return

        def done(finished: Future[Outcome]) -> None:  # on the hook thread, after the durable commit
            error = finished.exception()
            with contextlib.suppress(RuntimeError):  # the loop has ended: no worker is left to answer
                channel.send_threadsafe(_error(rid, error) if error else ("ok", rid, finished.result()))

        future.add_done_callback(done)

    def _background(self, channel: Channel, rid: int, work: Any) -> None:
        async def answer() -> None:
            try:
                channel.send(("ok", rid, await work))
            except Exception as err:
                channel.send(_error(rid, err))

        task = asyncio.create_task(answer())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spans(self, rows: list[dict[str, Any]]) -> int:
        if self.ctx.pipeline.pending > self.ctx.settings.max_pending_events:
            raise Overloaded()
        try:
            stored: int = await asyncio.to_thread(self.ctx.store.append_spans, rows)
        except StoreClosed as err:
            raise StoreUnavailable(str(err)) from None
        return stored

    async def _http(self, scope: dict[str, Any], body: bytes) -> tuple[int, list[Any], bytes]:
        """Run one forwarded request through the owner's app; its status, headers and whole body."""
        done = asyncio.Event()
        given = False
        status = 500
        headers: list[Any] = []
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        try:
            await self.app(dict(scope, state={}), receive, send)
        finally:
            done.set()
        return status, headers, b"".join(chunks)


def listening_sockets(listen: socket.socket, count: int) -> list[socket.socket]:
    """One listening socket per worker: ``listen`` and ``count - 1`` more bound to its address with
    ``SO_REUSEPORT``, so the kernel spreads new connections evenly over the workers (one shared socket
    lets whichever worker wakes first take a whole burst). The owner keeps them all open: connections
    that arrive for a worker being restarted wait in its socket's queue for the next one. Where the
    system has no ``SO_REUSEPORT`` (or ``listen`` was bound without it) every worker shares ``listen``."""
    reuse = hasattr(socket, "SO_REUSEPORT") and listen.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    if not reuse:
        return [listen] * count
    sockets = [listen]
    for _ in range(count - 1):
        sock = socket.socket(listen.family, listen.type, listen.proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(listen.getsockname())
        sock.listen(2048)
        sockets.append(sock)
    return sockets


def _error(rid: int, err: BaseException) -> tuple[Any, ...]:
    if isinstance(err, Overloaded):
        return ("err", rid, "overloaded", str(err), err.retry_after)
    if isinstance(err, StoreUnavailable):
        return ("err", rid, "unavailable", str(err), 5)
    _log.error("the owner failed a worker's request", None, err)
    return ("err", rid, "bug", f"the server failed: {type(err).__name__}", 0)
