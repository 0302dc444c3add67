"""``GET /api/0/events``: the latest events, and those after a cursor (admin token).

Query parameters: ``after`` (the cursor from the previous answer; without it, the latest ``limit``),
``level`` (that level and above), ``operation`` (exact, or a prefix ending in ``*``), ``text``
(substring of the message, any case), ``project``, ``kind``, ``limit`` (1-1000, default 100). Answers
``{"events": [...oldest first...], "cursor": N}``; ``opswatch tail -f`` polls with the cursor.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...record import LEVEL_NUMBERS
from .. import limits
from ..auth import get_context, require_admin
from ..ingest.records import KINDS
from ._answers import json_response

router = APIRouter(prefix="/api/0/events", tags=["events"], dependencies=[Depends(require_admin)])


@router.get("")
async def list_events(
    request: Request,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    level: str | None = None,
    operation: Annotated[str | None, Query(max_length=200)] = None,
    text: Annotated[str | None, Query(max_length=200)] = None,
    project: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=limits.TAIL_MAX_LIMIT)] = 100,
) -> Response:
    """A page of events, oldest first, with the cursor for the next poll."""
    if level is not None and level.lower() not in LEVEL_NUMBERS:
        raise HTTPException(
            400, f"level: expected one of trace, debug, info, warn, error, fatal; got {level!r}"
        )
    if kind is not None and kind not in KINDS:
        raise HTTPException(400, f"kind: expected one of {', '.join(sorted(KINDS))}; got {kind!r}")
    ctx = get_context(request)
    page = await run_in_threadpool(
        ctx.store.tail,
        after,
        level=level.lower() if level else None,
        operation=operation or None,
        text=text or None,
        project_id=project,
        kind=kind,
        limit=limit,
    )
    return json_response({"events": page.records, "cursor": page.cursor})
