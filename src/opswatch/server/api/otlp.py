"""OTLP/HTTP ingest: ``POST /api/<project>/otlp/v1/traces`` and ``/v1/logs``.

An OpenTelemetry SDK or Collector sends here with
``OTEL_EXPORTER_OTLP_ENDPOINT=<server>/api/<project>/otlp`` and the ingest key in
``OTEL_EXPORTER_OTLP_HEADERS`` as ``authorization=Bearer <key>`` or ``x-opswatch-key=<key>``.
Bodies are ``application/x-protobuf`` or ``application/json`` (OTLP/JSON), gzip (or deflate, br,
zstd) with ``Content-Encoding``. Answers, as the OTLP specification says:

* ``200`` with an ``ExportTraceServiceResponse`` (``ExportLogsServiceResponse``) in the request's
  encoding once the spans (log records) are durable; those that could not be stored are counted in
  ``partial_success.rejected_spans`` (``rejected_log_records``) with the first reasons in
  ``error_message``;
* ``400`` (unreadable body), ``401`` (bad key), ``413`` (too large, too many spans), ``415`` (another
  content type); ``429`` and ``503`` with ``Retry-After`` when the server is full or stopping, which
  OTLP exporters retry. Every failure's body is a ``google.rpc.Status`` in the request's encoding
  (``traces/otlp_status.py``).
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...record import format_timestamp
from .. import limits
from ..auth import native_key, project_for_key
from ..context import ServerContext
from ..ingest.body import inflate, read_body
from ..traces.counters import counters
from ..traces.otlp import answer, decode_traces, is_json
from ..traces.otlp_logs import answer_logs, decode_logs
from ..traces.otlp_status import status_answer
from ..traces.submit import store_spans
from ._answers import durable, run_ingest

router = APIRouter(tags=["ingest"])


async def _read(request: Request, ctx: ServerContext) -> tuple[int, bool, bytes]:
    """The project (after checking the key), whether the body is OTLP/JSON, and the decompressed body."""
    project_id = project_for_key(ctx, request.path_params["project"], native_key(request))
    json = is_json(request.headers.get("content-type"))
    raw = await read_body(request, timeout=ctx.settings.body_timeout)
    body = await inflate(raw, request.headers.get("content-encoding"), limits.MAX_OTLP_DECOMPRESSED_BYTES)
    return project_id, json, body


def _wants_json(request: Request) -> bool:
    """Whether failures are answered in OTLP/JSON (the request is JSON) rather than protobuf."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    return media == "application/json"


def _media(json: bool) -> str:
    return "application/json" if json else "application/x-protobuf"


async def otlp_traces(request: Request) -> Response:
    """Take an OTLP ``ExportTraceServiceRequest`` (see the module docstring)."""

    async def work(ctx: ServerContext) -> Response:
        project_id, json, body = await _read(request, ctx)
        received_at = format_timestamp(ctx.now().timestamp())
        decoded = await run_in_threadpool(decode_traces, body, json=json, received_at=received_at)
        rejected = counters(ctx).rejected
        for code in decoded.codes:
            rejected.inc(source="otlp", reason=code)
        await store_spans(ctx, project_id, decoded.rows, "otlp")
        return Response(answer(decoded, json=json), media_type=_media(json))

    return status_answer(await run_ingest(request, "otlp_traces", work), json=_wants_json(request))


async def otlp_logs(request: Request) -> Response:
    """Take an OTLP ``ExportLogsServiceRequest``: its log records go to ``logs`` like native records."""

    async def work(ctx: ServerContext) -> Response:
        project_id, json, body = await _read(request, ctx)
        epoch = ctx.now().timestamp()
        received_at = format_timestamp(epoch)
        decoded = await run_in_threadpool(
            decode_logs, body, json=json, received_epoch=epoch, received_at=received_at
        )
        for code in decoded.codes:
            ctx.metrics.rejected.inc(reason=code)
        if decoded.rows:
            await durable(ctx, project_id, decoded.rows, "otlp")
        return Response(answer_logs(decoded, json=json), media_type=_media(json))

    return status_answer(await run_ingest(request, "otlp_logs", work), json=_wants_json(request))


router.add_route("/api/{project}/otlp/v1/traces", otlp_traces, methods=["POST"], include_in_schema=False)
router.add_route("/api/{project}/otlp/v1/logs", otlp_logs, methods=["POST"], include_in_schema=False)

#: Dispatched before the middleware stack, as the other ingest endpoints are (``app.FAST_PATHS``).
FAST_PATHS = [
    (re.compile(r"/api/(?P<project>[^/]+)/otlp/v1/traces/?"), otlp_traces),
    (re.compile(r"/api/(?P<project>[^/]+)/otlp/v1/logs/?"), otlp_logs),
]
