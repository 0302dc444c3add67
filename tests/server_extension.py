"""A stand-in for a later subsystem, plugged in through the server's extension points.

``router`` is listed in ``ROUTERS`` and ``install`` in ``SUBSYSTEMS`` by the tests that need them; it
adds a hook that remembers every batch and a background worker that records its start and stop.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request

from opswatch.server.auth import get_context

router = APIRouter()


@router.get("/extension/seen")
async def seen(request: Request) -> dict[str, Any]:
    """How many records the hook saw."""
    return {"records": len(get_context(request).extras["extension"].records)}


class Extension:
    """The hook and the background worker."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.lock = threading.Lock()

    def hook(self, _ctx: Any, records: list[dict[str, Any]]) -> None:
        with self.lock:
            self.records.extend(records)

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")


def install(ctx: Any) -> None:
    """Add the hook and the worker to ``ctx``."""
    extension = Extension()
    ctx.extras["extension"] = extension
    ctx.hooks.append(extension.hook)
    ctx.background.append(extension)
