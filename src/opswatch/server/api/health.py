"""``GET /healthz``: liveness. 200 ``{"status": "ok"}`` while the server can take events, else 503."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..auth import get_context
from ._answers import json_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    """Whether the server is up and its committer is running, with the queue depth."""
    ctx = get_context(request)
    alive = ctx.pipeline.running
    body = {"status": "ok" if alive else "stopping", "queue": ctx.pipeline.pending}
    return json_response(body, 200 if alive else 503)
