"""OTLP/HTTP ingest: ``POST /api/<project>/otlp/v1/traces``.

An OpenTelemetry SDK or Collector sends here with
``OTEL_EXPORTER_OTLP_ENDPOINT=<server>/api/<project>/otlp`` and the ingest key in
``OTEL_EXPORTER_OTLP_HEADERS`` as ``authorization=Bearer <key>`` or ``x-opswatch-key=<key>``.
Bodies are ``application/x-protobuf`` or ``application/json`` (OTLP/JSON), gzip (or deflate, br,
zstd) with ``Content-Encoding``. Answers, as the OTLP specification says:

* ``200`` with an ``ExportTraceServiceResponse`` in the request's encoding once the spans are durable;
  spans that could not be stored are counted in ``partial_success.rejected_spans`` with the first reasons
  in ``error_message``;
* ``400`` (unreadable body), ``401`` (bad key), ``413`` (too large, too many spans), ``415`` (another
  content type); ``429`` and ``503`` with ``Retry-After`` when the server is full or stopping, which
  OTLP exporters retry.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...record import format_timestamp
from .. import limits
from ..auth import native_key, project_for_key
from ..context import ServerContext
from ..ingest.body import decompress, read_body
from ..traces.counters import counters
from ..traces.otlp import answer, decode_traces, is_json
from ..traces.submit import store_spans
from ._answers import run_ingest

router = APIRouter(tags=["ingest"])


async def otlp_traces(request: Request) -> Response:
    """Take an OTLP ``ExportTraceServiceRequest`` (see the module docstring)."""
    project = request.path_params["project"]

    async def work(ctx: ServerContext) -> Response:
        project_id = project_for_key(ctx, project, native_key(request))
        json = is_json(request.headers.get("content-type"))
        raw = await read_body(request)
        body = decompress(raw, request.headers.get("content-encoding"), limits.MAX_OTLP_DECOMPRESSED_BYTES)
        decoded = decode_traces(body, json=json, received_at=format_timestamp(ctx.now().timestamp()))
        rejected = counters(ctx).rejected
        for code in decoded.codes:
            rejected.inc(source="otlp", reason=code)
        await store_spans(ctx, project_id, decoded.rows, "otlp")
        media = "application/json" if json else "application/x-protobuf"
        return Response(answer(decoded, json=json), media_type=media)

    return await run_ingest(request, "otlp_traces", work)


router.add_route("/api/{project}/otlp/v1/traces", otlp_traces, methods=["POST"], include_in_schema=False)

#: Dispatched before the middleware stack, as the other ingest endpoints are (``app.FAST_PATHS``).
FAST_PATHS = [(re.compile(r"/api/(?P<project>[^/]+)/otlp/v1/traces/?"), otlp_traces)]
