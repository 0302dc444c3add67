"""Spans to the store: redacted on arrival, stamped with their project, durable before the answer.

``store_spans(ctx, project_id, rows)`` is what every span source calls with rows from ``model.span_row``.
Each row is redacted with the server's redactor (the one the pipeline uses, same settings), so span
names, attributes, events, links and status messages are searched and censored as log fields are; ids,
the start, the kind and the duration are copied. The rows are appended on the store's writer thread and
the call returns once they are durable. Spans the SDK did not sample go through tail sampling first
(``tail.py``): held until their trace is decided, or written with the batch that keeps their trace.
A server past ``max_pending_events`` refuses with ``Overloaded``
(429 with Retry-After), a closed store with ``StoreUnavailable`` (503).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from ..pipeline import Overloaded, StoreUnavailable
from ..store.base import StoreClosed
from . import tail
from .counters import counters

if TYPE_CHECKING:
    from ..context import ServerContext
    from ..ingest.records import Rejection
    from ..ingest.sentry_envelope import SentryBatch


#: Sentry item types counted by name when skipped; any other type is counted as ``other`` (a label
#: value per made-up type would let a client grow the scrape without bound).
KNOWN_ITEM_TYPES: Final = frozenset(
    {"session", "sessions", "client_report", "attachment", "profile", "profile_chunk", "replay_event",
     "replay_recording", "replay_video", "user_report", "feedback", "statsd", "metric_meta",
     "trace_metric", "otel_log", "raw_security", "nel", "form_data", "unreal_report", "security"}
)  # fmt: skip


async def store_spans(ctx: ServerContext, project_id: int, rows: list[dict[str, Any]], source: str) -> int:
    """Redact and store span rows durably; return how many were taken: new, or held for tail sampling
    (see the module docstring and ``tail.py``).

    ``source`` (``otlp``, ``sentry``, ``native``) labels ``opswatch_spans_accepted_total``.
    """
    if not rows:
        return 0
    if ctx.pipeline.pending > ctx.settings.max_pending_events:
        raise Overloaded()
    sampler = tail.sampler(ctx)

    def sample_redact_append() -> tuple[int, int, int]:  # off the event loop: each step takes time
        kept, held = sampler.offer(project_id, rows)
        if not kept:
            return 0, held, 0
        clean = ctx.pipeline.prepare(project_id, kept)  # the pipeline's own redaction and stamping
        stored: int = ctx.store.append_spans(clean)
        return stored, held, len(kept) - (len(rows) - held)

    try:
        stored, held, earlier = await asyncio.to_thread(sample_redact_append)
    except StoreClosed as err:
        raise StoreUnavailable(str(err)) from None
    counters(ctx).accepted.inc(stored, source=source)
    # ``earlier``: spans held before and kept by this batch; stored now, but not this batch's own
    return held + max(0, stored - earlier)


async def sentry_spans(ctx: ServerContext, project_id: int, batch: SentryBatch) -> None:
    """Store a Sentry envelope's spans, and count its refused spans and its skipped items by type."""
    count = counters(ctx)
    for refused in batch.span_refusals:
        count.rejected.inc(source="sentry", reason=refused.code)
    for kind in batch.skipped_types:
        count.skipped_items.inc(type=kind if kind in KNOWN_ITEM_TYPES else "other")
    await store_spans(ctx, project_id, batch.spans, "sentry")


async def native_spans(
    ctx: ServerContext, project_id: int, rows: list[dict[str, Any]], refused: list[Rejection]
) -> int:
    """Store the SDK's spans from a native batch; count the refused ones. Returns how many were new."""
    for rejection in refused:
        counters(ctx).rejected.inc(source="native", reason=rejection.code)
    return await store_spans(ctx, project_id, rows, "native")
