"""An ingest worker: takes HTTP on the shared socket, does the per-event work, hands records to the owner.

Started by the owner as ``python -m opswatch.server.workers LISTEN_FD CHANNEL_FD`` with both sockets
inherited. Its first frame from the owner carries the settings and the default project, so a worker
runs with exactly the owner's settings.

* **Ingest** (``POST /api/<p>/events/``, ``/envelope/``, ``/store/``): the same handlers as one process
  (``opswatch.server.api.ingest``): key check (the state store is read here, through the same
  ``KeyCache``), body limits and timeouts, decompression, parsing and redaction run in this process.
  The redacted records go to the owner as one ``ingest`` message; the answer is sent only when the
  owner replies that their group commit is durable (or ``Overloaded``/``StoreUnavailable``, which the
  handlers answer 429/503 as always). Spans go the same way as a ``spans`` message.
* **Everything else** (API, dashboard, query, pings, OTLP, health, metrics) is forwarded whole to the
  owner as an ``http`` message (the request's scope and its body, bounded by ``MAX_BODY_BYTES`` and the
  body timeout) and answered with what the owner's app answered: one app, one copy of every cache and
  singleton, whichever worker the kernel gave the connection to.
* **Counts** (requests, rejections, spans) are shared with the owner's ``/metrics`` every second
  (``_metrics``); when the owner's keys change, it says so and this worker's key cache forgets.
* **Stop:** SIGTERM (from the owner) stops accepting, lets the requests in flight get their replies,
  then exits. When the owner's end closes (it died), every waiting request fails with 503 and the worker
  exits: nothing is acknowledged that the owner did not commit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any, cast

from starlette.datastructures import State
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from ...log import get_logger
from ..api._answers import json_response
from ..config import ServerSettings
from ..context import ServerContext
from ..ingest.body import BodyReader, IngestError
from ..metrics import Metrics
from ..pipeline import Outcome, Overloaded, Pipeline, StoreUnavailable
from ..state import projects
from ..state.base import create_engine_for
from ._channel import Channel, ChannelClosed, read_frame_blocking
from ._metrics import SHARE_SECONDS, Changes

_log = get_logger("opswatch.server.workers")

#: The scope keys a forwarded request carries to the owner (plain data; the rest is this process's).
FORWARDED_SCOPE_KEYS = (
    "type", "asgi", "http_version", "server", "client", "scheme", "method", "root_path", "path",
    "raw_path", "query_string", "headers",
)  # fmt: skip


class OwnerLink:
    """Requests to the owner and their replies: ``request(kind, *args)`` is a future of the reply."""

    def __init__(self, channel: Channel, on_notice: Callable[[str], None] = lambda _kind: None) -> None:
        self.channel = channel
        self.on_notice = on_notice
        self._ids = itertools.count(1)
        self._waiting: dict[int, concurrent.futures.Future[Any]] = {}
        self._lock = threading.Lock()
        self._loop_thread = threading.get_ident()
        self.gone = False

    def request(self, kind: str, *args: Any) -> concurrent.futures.Future[Any]:
        """Send ``(kind, id, *args)``; the future completes with the owner's reply (any thread)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self.gone:
                future.set_exception(StoreUnavailable("the server is shutting down"))
                return future
            rid = next(self._ids)
            self._waiting[rid] = future
        message = (kind, rid, *args)
        if threading.get_ident() == self._loop_thread:
            self.channel.send(message)
        else:
            self.channel.send_threadsafe(message)
        return future

    async def run(self) -> None:
        """Complete futures with the owner's replies until the channel closes; then fail the rest."""
        try:
            while True:
                for message in await self.channel.receive():
                    self._reply(message)
        except ChannelClosed:
            pass
        finally:
            with self._lock:
                self.gone = True
                waiting, self._waiting = self._waiting, {}
            for future in waiting.values():
                future.set_exception(StoreUnavailable("the server is shutting down"))

    def _reply(self, message: tuple[Any, ...]) -> None:
        kind, rid = message[0], message[1]
        if kind not in ("ok", "err"):  # a notice from the owner, not a reply
            self.on_notice(kind)
            return
        with self._lock:
            future = self._waiting.pop(rid, None)
        if future is None:
            return
        if kind == "ok":
            future.set_result(message[2])
        elif message[2] == "overloaded":
            future.set_exception(Overloaded(message[4]))
        elif message[2] == "unavailable":
            future.set_exception(StoreUnavailable(message[3]))
        else:
            future.set_exception(RuntimeError(message[3]))


class RemotePipeline(Pipeline):
    """The worker's pipeline: redaction here, the durable group commit in the owner."""

    def __init__(self, ctx: ServerContext, link: OwnerLink) -> None:
        super().__init__(ctx)
        self.link = link

    @property
    def running(self) -> bool:
        return not self.link.gone

    def submit(
        self, project_id: int, records: list[dict[str, Any]], source: str, *, prepared: bool = False
    ) -> concurrent.futures.Future[Outcome]:
        """Redact ``records`` here and have the owner commit them; the future completes when durable."""
        if not records:
            done: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
            done.set_result(Outcome(0, 0))
            return done
        clean = records if prepared else self.prepare(project_id, records)
        return self.link.request("ingest", project_id, clean, source)

    def start(self) -> None:
        """Nothing to start: the owner runs the committer."""

    def stop(self, timeout: float = 30.0) -> bool:
        """Nothing to stop: what was handed over is the owner's to commit."""
        return True


class RemoteStore:
    """The part of the event store an ingest handler uses in a worker: ``append_spans``, in the owner."""

    def __init__(self, link: OwnerLink, timeout: float) -> None:
        self.link = link
        self.timeout = timeout

    def append_spans(self, rows: list[dict[str, Any]]) -> int:
        """Have the owner append redacted span rows; returns how many were new, once durable."""
        stored: int = self.link.request("spans", rows).result(self.timeout)
        return stored

    def stats(self) -> dict[str, Any]:
        """Nothing: the owner's ``/metrics`` shows the store."""
        return {}

    def close(self) -> None:
        """Nothing to close here."""


class WorkerApp:
    """The worker's ASGI app: the ingest fast paths here, every other request forwarded to the owner."""

    def __init__(self, ctx: ServerContext, link: OwnerLink, on_owner_gone: Callable[[], None]) -> None:
        from ..api.ingest import FAST_PATHS

        self.state = State()
        self.state.ctx = ctx
        self.ctx = ctx
        self.link = link
        self.fast_paths = FAST_PATHS
        self._on_owner_gone = on_owner_gone
        self._link_task: asyncio.Task[None] | None = None
        self._share_task: asyncio.Task[None] | None = None
        self._changes = Changes(ctx)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: not served
            return
        if scope["method"] == "POST":
            for pattern, endpoint in self.fast_paths:
                match = pattern.fullmatch(scope["path"])
                if match is not None:
                    scope["app"] = self
                    scope["path_params"] = match.groupdict()
                    response = await endpoint(Request(scope, receive, send))
                    await response(scope, receive, send)
                    return
        await self._forward(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            body = await BodyReader(request, timeout=self.ctx.settings.body_timeout).read()
        except IngestError as err:
            if err.code != "client_disconnected":
                await json_response({"detail": err.reason}, err.status)(scope, receive, send)
            return
        forwarded = {key: scope[key] for key in FORWARDED_SCOPE_KEYS if key in scope}
        try:
            status, headers, content = await asyncio.wrap_future(self.link.request("http", forwarded, body))
        except (StoreUnavailable, RuntimeError) as err:
            answer = json_response({"detail": "the server is shutting down"}, 503, {"Retry-After": "5"})
            await answer(scope, receive, send)
            if not isinstance(err, StoreUnavailable):
                _log.error("the owner failed a forwarded request", {"path": scope.get("path")}, err)
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                self._link_task = asyncio.create_task(self._run_link())
                self._share_task = asyncio.create_task(self._share_counts())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._share_task is not None:
                    self._share_task.cancel()
                self._share_once()
                await self.link.channel.drain()
                self.link.channel.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _share_counts(self) -> None:
        while True:
            await asyncio.sleep(SHARE_SECONDS)
            self._share_once()

    def _share_once(self) -> None:
        changes = self._changes.take()
        if changes and not self.link.gone:
            self.link.channel.send(("metrics", 0, changes))

    async def _run_link(self) -> None:
        await self.link.run()
        self._on_owner_gone()  # the owner stopped or died: stop too (nothing more can be made durable)


def worker_context(
    settings: ServerSettings, default_project: projects.ProjectInfo, link: OwnerLink
) -> ServerContext:
    """A context for the ingest handlers: the state store for key checks, the owner for the rest."""
    engine = create_engine_for(settings.state_url)
    ctx = ServerContext(
        settings=settings,
        engine=engine,
        store=cast(Any, RemoteStore(link, timeout=60.0)),
        default_project=default_project,
        keys=projects.KeyCache(engine),
        metrics=Metrics(),
    )
    ctx.pipeline = RemotePipeline(ctx, link)
    return ctx


def main(argv: list[str]) -> int:
    """Serve as one worker: ``argv`` is ``[LISTEN_FD, CHANNEL_FD]``; returns the exit code."""
    import uvicorn

    import opswatch

    from .. import gc_tuning
    from ..serving import uvicorn_config

    listen = socket.socket(fileno=int(argv[0]))
    link_sock = socket.socket(fileno=int(argv[1]))
    hello = read_frame_blocking(link_sock)[0]
    settings: ServerSettings = hello[1]
    default_project: projects.ProjectInfo = hello[2]
    opswatch.init(service="opswatch-server", dsn=None)
    # uvicorn stops gracefully on SIGINT/SIGTERM and then re-raises the signal to the handlers it found;
    # these only note it, so a worker that drained exits 0 (as ``opswatch serve`` does).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    server: uvicorn.Server | None = None

    def owner_gone() -> None:
        if server is not None:
            server.should_exit = True

    async def serve() -> None:
        nonlocal server
        link = OwnerLink(await Channel.open(link_sock))
        ctx = worker_context(settings, default_project, link)
        link.on_notice = lambda kind: ctx.keys.forget() if kind == "forget_keys" else None
        server = uvicorn.Server(uvicorn_config(WorkerApp(ctx, link, owner_gone), settings))
        gc_tuning.tune()  # as the single process does (gc_tuning.py)
        try:
            await server.serve(sockets=[listen])
        finally:
            ctx.engine.dispose()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":  # pragma: no cover - the owner starts workers with ``-m opswatch.server.workers``
    sys.exit(main(sys.argv[1:]))
