"""Ingest endpoints: native batches, Sentry envelopes and the legacy store, Sentry's HTTP check-ins.

* ``POST /api/<project>/events/``: NDJSON (gzip allowed), key as ``Authorization: Bearer`` or
  ``X-Opswatch-Key``. Answers ``200 {"accepted", "duplicates", "rejected": [{"index", "reason"}]}`` once
  the accepted events are durable; 400 with the same body when no event was valid; 401 bad key; 413
  too large; 429 with Retry-After when the server is full.
* ``POST /api/<project>/envelope/`` and ``/store/``: what Sentry SDKs send; key in ``X-Sentry-Auth``,
  ``?sentry_key=`` or the envelope header's ``dsn``. Answers ``200 {"id": ...}``.
* ``GET|POST /api/<project>/cron/<slug>/<key>/?status=...``: Sentry's check-in URL. Answers 202.

Handlers authenticate before they read the body (a tunnelled envelope from its first line only, see
``opswatch.server.ingest.body``), inflate off the event loop, then bound and parse;
``opswatch.server.pipeline`` redacts and stores.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...record import format_timestamp
from .. import limits
from ..auth import native_key, project_for_key, sentry_key
from ..context import ServerContext
from ..ingest import client_report
from ..ingest.body import BodyReader, IngestError, envelope_dsn, inflate
from ..ingest.native import parse_batch
from ..ingest.pings import sentry_check_in_record
from ..ingest.records import Refused, normalize
from ..ingest.sentry_envelope import SentryBatch, read_envelope, read_store_body
from ..monitors import refusal_for
from ..traces.native import split_spans
from ..traces.submit import native_spans, sentry_spans
from ._answers import count_rejections, durable, json_response, run_ingest

router = APIRouter(tags=["ingest"])

# The three hot endpoints take the raw request and need none of FastAPI's machinery. They are plain
# Starlette routes (registered at the end of this module) and also ``FAST_PATHS``: the app answers POSTs
# to them before its middleware stack and router, which saves ~0.2 ms of CPU per request (Sentry SDKs
# send one event per request, so this is a fifth of the cost of an event).


def _received(ctx: ServerContext) -> tuple[float, str]:
    epoch = ctx.now().timestamp()
    return epoch, format_timestamp(epoch)


async def native_events(request: Request) -> Response:
    """Take a native NDJSON batch (see the module docstring)."""
    project = request.path_params["project"]

    async def work(ctx: ServerContext) -> Response:
        project_id = project_for_key(ctx, project, native_key(request))
        raw = await BodyReader(request, timeout=ctx.settings.body_timeout).read()
        encoding = request.headers.get("content-encoding")
        body = await inflate(raw, encoding, limits.MAX_NATIVE_DECOMPRESSED_BYTES)
        epoch, received_at = _received(ctx)
        batch = parse_batch(body, epoch, received_at)
        batch.records, spans, refused_spans = split_spans(batch.records, batch.rejected, received_at)
        count_rejections(ctx, batch.rejected)
        rejected = [r.as_dict() for r in batch.rejected + refused_spans]
        if not batch.records and not spans:
            detail = "the body holds no events" if not rejected else "no event in the batch is valid"
            return json_response(
                {"detail": detail, "accepted": 0, "duplicates": 0, "rejected": rejected}, 400
            )
        outcome = await durable(ctx, project_id, batch.records, "native") if batch.records else None
        stored, duplicates = (outcome.stored, outcome.duplicates) if outcome else (0, 0)
        if spans or refused_spans:
            new_spans = await native_spans(ctx, project_id, spans, refused_spans)
            stored, duplicates = stored + new_spans, duplicates + len(spans) - new_spans
        client_report.count(ctx.metrics.client_dropped, project_id, request.headers.get(client_report.HEADER))
        return json_response({"accepted": stored, "duplicates": duplicates, "rejected": rejected})

    return await run_ingest(request, "native", work)


async def sentry_envelope(request: Request) -> Response:
    """Take a Sentry envelope."""
    project = request.path_params["project"]

    async def work(ctx: ServerContext) -> Response:
        reader = BodyReader(request, timeout=ctx.settings.body_timeout)
        key = sentry_key(request)
        if not key:  # a tunnel: the DSN travels in the envelope header, read from the first bytes only
            head = await reader.prefix(limits.MAX_UNAUTHENTICATED_BYTES)
            dsn = envelope_dsn(head, request.headers.get("content-encoding"))
            key = _dsn_key(dsn)
        project_id = project_for_key(ctx, project, key)
        body = await _sentry_body(request, reader)
        epoch, received_at = _received(ctx)
        return await _answer_sentry(ctx, project_id, read_envelope(body, epoch, received_at))

    return await run_ingest(request, "envelope", work, sentry=True)


async def sentry_store(request: Request) -> Response:
    """Take one event the legacy way."""
    project = request.path_params["project"]

    async def work(ctx: ServerContext) -> Response:
        project_id = project_for_key(ctx, project, sentry_key(request))
        body = await _sentry_body(request, BodyReader(request, timeout=ctx.settings.body_timeout))
        epoch, received_at = _received(ctx)
        return await _answer_sentry(ctx, project_id, read_store_body(body, epoch, received_at))

    return await run_ingest(request, "store", work, sentry=True)


@router.api_route("/api/{project}/cron/{slug}/{key}/", methods=["GET", "POST"], include_in_schema=False)
@router.api_route("/api/{project}/cron/{slug}/{key}", methods=["GET", "POST"], include_in_schema=False)
async def sentry_cron(project: str, slug: str, key: str, request: Request) -> Response:
    """Sentry's HTTP check-in: ``?status=in_progress|ok|error``, optional ``check_in_id``, ``duration``."""

    async def work(ctx: ServerContext) -> Response:
        project_id = project_for_key(ctx, project, key)
        record = sentry_check_in_record(slug, request.query_params)
        epoch, received_at = _received(ctx)
        try:
            normalize(record, epoch, received_at)
        except Refused as refused:
            raise IngestError(400, refused.code, str(refused)) from None
        reason = refusal_for(ctx, project_id, record)
        if reason is not None:
            raise IngestError(404, "unknown_monitor", reason)
        await durable(ctx, project_id, [record], "sentry")
        return json_response({"id": record.get("check_in_id") or record["event_id"]}, 202)

    return await run_ingest(request, "sentry_cron", work, sentry=True)


def _dsn_key(dsn: str | None) -> str | None:
    """The key (user part) of a DSN; None for a missing or malformed one."""
    if not dsn:
        return None
    try:
        return urlsplit(dsn).username
    except ValueError:
        return None


async def _sentry_body(request: Request, reader: BodyReader) -> bytes:
    raw = await reader.read()
    return await inflate(raw, request.headers.get("content-encoding"), limits.MAX_DECOMPRESSED_BYTES)


async def _answer_sentry(ctx: ServerContext, project_id: int, batch: SentryBatch) -> Response:
    count_rejections(ctx, batch.rejected)
    rejected = [r.as_dict() for r in batch.rejected]
    if not batch.records and rejected:
        return json_response({"detail": "no item in the envelope is valid", "rejected": rejected}, 400)
    if batch.records:
        await durable(ctx, project_id, batch.records, "sentry")
    await sentry_spans(ctx, project_id, batch)
    answer: dict[str, object] = {"id": batch.event_id} if batch.event_id else {}
    if rejected:
        answer["rejected"] = rejected
    return json_response(answer)


for _path, _endpoint in (
    ("/api/{project}/events/", native_events),
    ("/api/{project}/envelope/", sentry_envelope),
    ("/api/{project}/store/", sentry_store),
):
    router.add_route(_path, _endpoint, methods=["POST"], include_in_schema=False)
    router.add_route(_path.rstrip("/"), _endpoint, methods=["POST"], include_in_schema=False)

#: ``(path pattern, endpoint)`` for POSTs the app dispatches before its middleware and router; the
#: pattern's named groups become ``request.path_params``.
FAST_PATHS = [
    (re.compile(r"/api/(?P<project>[^/]+)/events/?"), native_events),
    (re.compile(r"/api/(?P<project>[^/]+)/envelope/?"), sentry_envelope),
    (re.compile(r"/api/(?P<project>[^/]+)/store/?"), sentry_store),
]
