"""Cron pings from shell scripts: ``GET|POST|HEAD /ping/<key>/<slug>[/start|/fail|/<exit-code>]``.

``curl -fsS -m 10 --retry 5 http://127.0.0.1:8321/ping/$KEY/nightly-backup/$?`` after a job is all a
crontab needs. ``?rid=<uuid>`` ties a ``/start`` to its end. Answers ``200 OK`` (text) once the check-in
is durable; 404 ``not found`` for an unknown key or action (the key is the project's ingest key), 404
with the reason for a monitor that does not exist (pings carry no schedule to create it from), 400
for a bad slug, exit code or run id. A POST body is kept as the run's ``output``.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from ...record import format_timestamp
from .. import limits
from ..context import ServerContext
from ..ingest.body import IngestError, read_body
from ..ingest.pings import ping_record
from ..ingest.records import normalize
from ..monitors import refusal_for
from ._answers import durable, run_ingest

router = APIRouter(tags=["pings"])


# One route per method (not ``api_route(methods=[...])``), so each has its own OpenAPI operation id.
@router.get("/ping/{key}/{slug}")
@router.post("/ping/{key}/{slug}")
@router.head("/ping/{key}/{slug}")
async def ping(key: str, slug: str, request: Request) -> Response:
    """Success."""
    return await _ping(request, key, slug, "")


@router.get("/ping/{key}/{slug}/{action}")
@router.post("/ping/{key}/{slug}/{action}")
@router.head("/ping/{key}/{slug}/{action}")
async def ping_action(key: str, slug: str, action: str, request: Request) -> Response:
    """``start``, ``fail`` or an exit code 0-255."""
    return await _ping(request, key, slug, action)


async def _ping(request: Request, key: str, slug: str, action: str) -> Response:
    async def work(ctx: ServerContext) -> Response:
        project_id = ctx.keys.project_for(key)
        if project_id is None:
            raise IngestError(404, "not_found", "not found")
        body = b""
        if request.method == "POST":
            body = await read_body(request, limits.MAX_BODY_BYTES, ctx.settings.body_timeout)
        record = ping_record(
            slug, action, request.query_params.get("rid"), body, request.headers.get("user-agent")
        )
        epoch = ctx.now().timestamp()
        normalize(record, epoch, format_timestamp(epoch))
        reason = refusal_for(ctx, project_id, record)
        if reason is not None:  # as Healthchecks does: the script's curl -f sees the failure
            raise IngestError(404, "unknown_monitor", reason)
        await durable(ctx, project_id, [record], "ping")
        return PlainTextResponse("OK")

    response = await run_ingest(request, "ping", work)
    if response.status_code != 200 and response.media_type == "application/json":
        # Healthchecks answers pings in plain text; keep that for scripts that print the answer.
        detail = orjson.loads(bytes(response.body)).get("detail", "")
        return PlainTextResponse(str(detail), response.status_code, headers=_retry_headers(response))
    return response


def _retry_headers(response: Response) -> dict[str, str]:
    value = response.headers.get("retry-after")
    return {"Retry-After": value} if value else {}
