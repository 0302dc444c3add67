"""How ingest handlers answer: JSON bodies, error statuses, and the bookkeeping every answer needs.

``run_ingest`` wraps a handler's work: it turns ``IngestError`` into its status with ``{"detail": ...}``,
``Overloaded`` into 429 with ``Retry-After`` (and Sentry's ``X-Sentry-Rate-Limits`` on Sentry routes),
``StoreUnavailable`` into 503, and counts every request by endpoint and status. A client that went away
mid-body counts as 499 (nginx's "client closed request"): its outcome, not a server error, so nothing is
logged for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...log import get_logger
from ..auth import get_context
from ..context import ServerContext
from ..ingest.body import IngestError
from ..ingest.records import Rejection
from ..pipeline import Outcome, Overloaded, StoreUnavailable

_log = get_logger("opswatch.server.ingest")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` as JSON (orjson) with ``status``."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def count_rejections(ctx: ServerContext, rejected: Sequence[Rejection]) -> None:
    """Add each rejection to ``opswatch_events_rejected_total`` by its reason code."""
    for rejection in rejected:
        ctx.metrics.rejected.inc(reason=rejection.code)


async def durable(ctx: ServerContext, project_id: int, records: list[dict[str, Any]], source: str) -> Outcome:
    """Submit records to the pipeline and wait until they are durable."""
    return await asyncio.wrap_future(ctx.pipeline.submit(project_id, records, source))


async def run_ingest(
    request: Request,
    endpoint: str,
    work: Callable[[ServerContext], Awaitable[Response]],
    *,
    sentry: bool = False,
) -> Response:
    """Run ``work`` and answer its errors the ingest way (see the module docstring)."""
    ctx = get_context(request)
    started = time.perf_counter()
    try:
        response = await work(ctx)
    except IngestError as err:
        if err.code == "client_disconnected":
            ctx.metrics.requests.inc(endpoint=endpoint, status="499")
            return Response(status_code=499)  # nobody reads it; the ASGI server drops it
        if err.code in ("too_large", "too_many_events", "too_many_items", "bad_envelope", "invalid_json"):
            ctx.metrics.rejected.inc(reason=err.code)
        response = json_response({"detail": err.reason}, err.status)
    except Overloaded as err:
        ctx.metrics.rejected.inc(reason="overloaded")
        headers = {"Retry-After": str(err.retry_after)}
        if sentry:
            headers["X-Sentry-Rate-Limits"] = f"{err.retry_after}::organization:overloaded"
        response = json_response({"detail": str(err)}, 429, headers)
    except StoreUnavailable as err:
        response = json_response({"detail": str(err)}, 503, {"Retry-After": "5"})
    except Exception as err:  # a bug: log it, answer 500, keep serving
        _log.error("ingest failed", {"endpoint": endpoint}, err)
        response = json_response({"detail": "internal error"}, 500)
    ctx.metrics.requests.inc(endpoint=endpoint, status=str(response.status_code))
    ctx.metrics.request_latency.observe(time.perf_counter() - started)
    return response
