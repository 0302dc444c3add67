"""``GET /metrics``: the server's own counters in the Prometheus text format (no auth, like most
exporters; it holds counts, never event content). Bind to 127.0.0.1 or put it behind your proxy."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..auth import get_context

router = APIRouter(tags=["metrics"])


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Events accepted and rejected by reason, commit and request latency, queue depth, store size."""
    ctx = get_context(request)
    text = await run_in_threadpool(ctx.metrics.render)  # the store's stats may touch the disk
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")
