"""Test helper: a real opswatch server on a free 127.0.0.1 port, in a thread of the test process.

::

    from opswatch.server.testing import running_server

    def test_it_stores_a_ping(tmp_path):
        with running_server(tmp_path) as server:
            httpx.get(f"{server.url}/ping/{server.key}/nightly")
            assert server.ctx.store.tail().records[-1]["monitor_slug"] == "nightly"

The server is the one ``opswatch serve`` runs (uvicorn, the same app, the real stores in
``<tmp_path>/opswatch-data``), so tests talk HTTP to it with any client: ``server.dsn`` for the SDK and
Sentry SDKs, ``server.admin_headers`` for the management API. Settings are ``ServerSettings`` fields;
the process environment is ignored unless ``environ`` is given. Leaving the block stops the server the
graceful way (everything acknowledged is durable, the stores are closed). Starting twice on the same
``tmp_path`` reopens the same data, as a restart would.

``rule_clock=False`` keeps the rule clock from ever starting (not even its first tick), so a test that
runs the rounds by hand (``rules_for(server.ctx).clock.run_once(at)``) has no background round racing
its own, whatever the machine's load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import uvicorn

from .app import create_app
from .config import ServerSettings
from .context import ServerContext, open_context
from .serving import uvicorn_config
from .store.base import EventStore


@dataclasses.dataclass(frozen=True)
class RunningServer:
    """A server started by ``running_server``."""

    url: str
    dsn: str
    key: str
    project_id: int
    admin_token: str
    ctx: ServerContext

    @property
    def admin_headers(self) -> dict[str, str]:
        """``Authorization`` for the management API."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def settings(self) -> ServerSettings:
        """The settings the server runs with."""
        return self.ctx.settings


@contextlib.contextmanager
def running_server(
    tmp_path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    store: EventStore | None = None,
    now: Callable[[], datetime.datetime] | None = None,
    notifier: Any | None = None,
    start_timeout: float = 30.0,
    rule_clock: bool = True,
    **settings: Any,
) -> Iterator[RunningServer]:
    """Start a server for the block; see the module docstring. ``store``/``now``/``notifier`` are
    handed to ``open_context``; ``rule_clock=False`` leaves the rule clock stopped."""
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without it
    # every answer written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        settings.setdefault("data_dir", Path(tmp_path) / "opswatch-data")
        resolved = ServerSettings.load(
            environ={} if environ is None else environ, host="127.0.0.1", port=port, **settings
        )
        ctx = open_context(resolved, store=store, now=now, notifier=notifier)
        try:
            app = create_app(ctx)
            if not rule_clock:
                _hold_rule_clock(ctx)
        except BaseException:
            ctx.close()
            raise
        config = uvicorn_config(app, resolved)
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="opswatch-test-server", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(10)
                ctx.close()
                raise RuntimeError("the opswatch test server did not start")
            time.sleep(0.01)
        key = ctx.default_project.keys[0].key
        try:
            yield RunningServer(
                url=f"http://127.0.0.1:{port}",
                dsn=resolved.dsn(key, ctx.default_project.id),
                key=key,
                project_id=ctx.default_project.id,
                admin_token=resolved.admin_token,
                ctx=ctx,
            )
        finally:
            server.should_exit = True
            thread.join(30)
            ctx.close()  # already closed by the lifespan unless the server died
    finally:
        sock.close()


def _hold_rule_clock(ctx: ServerContext) -> None:
    """Take the rule clock out of the workers the server starts, and out of a ``Leadership``'s singletons
    (leader election on): it then runs only when the test calls it."""
    from .leader import Leadership
    from .rules import rules_for

    clock = rules_for(ctx).clock
    ctx.background[:] = [worker for worker in ctx.background if worker is not clock]
    for worker in ctx.background:
        if isinstance(worker, Leadership):
            worker.singletons = [singleton for singleton in worker.singletons if singleton is not clock]
