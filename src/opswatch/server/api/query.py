"""``POST /api/0/query``: read-only SQL over the event store (admin token).

Body ``{"sql": "...", "max_rows": 10000, "timeout": 30}`` (only ``sql`` is required). Answers 200 with
``{"columns": [...], "rows": [[...], ...], "row_count": N, "truncated": false, "elapsed_ms": 12.3}``
(plus ``"notice"`` when the row cap cut the answer); 400 ``{"detail": reason}`` for SQL that is refused
or fails; 408 when the query ran past its time limit; 503 while earlier queries that ran past it are
still being stopped. ``truncated`` with a ``notice`` says the answer was cut by the row cap or by the
answer-size cap (``QUERY_MAX_ANSWER_BYTES``). The checks and limits are
``opswatch.server.query``'s; the query runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import limits
from ..auth import get_context, require_admin
from ..query import jsonable, run_query, truncation_notice
from ..store.base import QueryBusy, QueryError, QueryTimeout

router = APIRouter(prefix="/api/0/query", tags=["query"], dependencies=[Depends(require_admin)])

#: Largest request body: the longest SQL plus room for JSON escaping and the other fields.
_MAX_BODY_BYTES = 2 * limits.QUERY_MAX_SQL_CHARS + 1024


@router.post("")
async def query(request: Request) -> Response:
    """Run one checked SELECT and answer its rows as JSON."""
    body = await request.body()
    if len(body) > _MAX_BODY_BYTES:
        raise HTTPException(413, f"the request body is over {_MAX_BODY_BYTES} bytes")
    sql, max_rows, timeout = _parse(body)
    ctx = get_context(request)
    try:
        result = await run_in_threadpool(run_query, ctx.store, sql, max_rows=max_rows, timeout=timeout)
    except QueryTimeout as err:
        raise HTTPException(408, str(err)) from None
    except QueryBusy as err:
        raise HTTPException(503, str(err), headers={"Retry-After": "5"}) from None
    except QueryError as err:
        raise HTTPException(400, str(err)) from None
    answer: dict[str, Any] = {
        "columns": result.columns,
        "rows": [[jsonable(value) for value in row] for row in result.rows],
        "row_count": len(result.rows),
        "truncated": result.truncated,
        "elapsed_ms": round(result.elapsed_ms, 3),
    }
    notice = truncation_notice(result)
    if notice:
        answer["notice"] = notice
    return Response(orjson.dumps(answer), media_type="application/json")


def _parse(body: bytes) -> tuple[str, int, float]:
    """``(sql, max_rows, timeout)`` from the JSON body, or 400 naming the bad field."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise HTTPException(400, 'expected a JSON body like {"sql": "SELECT ..."}') from None
    if not isinstance(data, dict):
        raise HTTPException(400, 'expected a JSON object like {"sql": "SELECT ..."}')
    sql = data.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise HTTPException(400, "sql: expected the SQL text")
    max_rows = data.get("max_rows", limits.QUERY_DEFAULT_MAX_ROWS)
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or not 1 <= max_rows <= limits.QUERY_MAX_ROWS:  # noqa: E501
        raise HTTPException(400, f"max_rows: expected 1..{limits.QUERY_MAX_ROWS}")
    timeout = data.get("timeout", limits.QUERY_DEFAULT_TIMEOUT_SECONDS)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 < timeout <= limits.QUERY_MAX_TIMEOUT_SECONDS
    ):
        most = limits.QUERY_MAX_TIMEOUT_SECONDS
        raise HTTPException(400, f"timeout: expected seconds, more than 0 and at most {most:g}")
    unknown = sorted(set(data) - {"sql", "max_rows", "timeout"})
    if unknown:
        raise HTTPException(400, f"unknown field {unknown[0]!r} (expected sql, max_rows, timeout)")
    return sql, max_rows, float(timeout)
