"""``GET /healthz``: liveness. 200 ``{"status": "ok"}`` while the server can take events, else 503.

``"degraded"`` (still 200: events are taken and stored) while an ingest hook failed lately: issue
grouping or check-ins could not process some stored events (counts in ``/metrics``). With leader election
on (replicas), ``"leader"`` says whether this replica runs the singletons and ``"holder"`` is its lease id."""

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
    trouble = ctx.pipeline.hook_trouble()
    status = "stopping" if not alive else "degraded" if trouble else "ok"
    body: dict[str, object] = {"status": status, "queue": ctx.pipeline.pending}
    if trouble:
        body.update(trouble)
    leadership = ctx.extras.get("leader")  # replicas: whether this one runs the singletons
    if leadership is not None:
        body.update(leadership.status())
    return json_response(body, 200 if alive else 503)
