"""ASGI lifespan shutdown: what the app logged up to the end of its shutdown is delivered before it returns.

The record logged in the app's own shutdown handler is on the server the moment the lifespan shutdown
completes, long before the transport's 1 s batch interval would have sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

import opswatch
from deploy_helpers import count_stored, ingest
from opswatch.integrations.asgi import OpswatchMiddleware, flush_on_shutdown
from opswatch.server.testing import RunningServer

__all__ = ["ingest"]  # the fixture, imported for the tests below


def app_logging_at_shutdown(*, hook: bool) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        opswatch.get_logger("app").info("shutting down", operation="deploy.record", n=0)
        if hook:
            assert flush_on_shutdown()

    return Starlette(lifespan=lifespan)


def run_lifespan(app: Any, at_shutdown_complete: Any) -> list[str]:
    """Start and stop ``app`` as an ASGI server does; call ``at_shutdown_complete()`` when it says so."""
    said: list[str] = []

    async def main() -> None:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})

        async def receive() -> dict[str, Any]:
            return await inbox.get()

        async def send(message: dict[str, Any]) -> None:
            said.append(message["type"])
            if message["type"] == "lifespan.startup.complete":
                await inbox.put({"type": "lifespan.shutdown"})
            elif message["type"] == "lifespan.shutdown.complete":
                at_shutdown_complete()

        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    asyncio.run(main())
    return said


@pytest.mark.slow
@pytest.mark.parametrize("hook", ["middleware", "flush_on_shutdown"])
def test_it_delivers_what_the_app_logged_by_the_end_of_its_lifespan(
    ingest: RunningServer, tmp_path: Path, hook: str
) -> None:
    opswatch.init(dsn=ingest.dsn, console=False, spool_dir=str(tmp_path / "spool"))
    app = app_logging_at_shutdown(hook=hook == "flush_on_shutdown")
    asgi = OpswatchMiddleware(app) if hook == "middleware" else app
    stored_when_done: list[int] = []

    said = run_lifespan(asgi, lambda: stored_when_done.append(count_stored(ingest)))

    assert said == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert stored_when_done == [1]
    opswatch.get_logger("app").info("still logging", operation="deploy.record", n=1)
    assert opswatch.flush(30)  # the sinks stay open after a lifespan shutdown
    assert count_stored(ingest) == 2
