"""The tracing counters in ``/metrics``, kept in ``ctx.extras`` and added to the scrape on first use.

* ``opswatch_spans_accepted_total{source}``: spans stored (new ones; retries are not counted twice);
* ``opswatch_spans_rejected_total{source,reason}``: spans refused at ingest;
* ``opswatch_sentry_items_skipped_total{type}``: Sentry envelope items the server does not keep
  (``session``, ``client_report``, ``profile``, ``replay_event`` ...), by item type.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ..metrics import Counter

if TYPE_CHECKING:
    from ..context import ServerContext

_KEY = "opswatch.traces.counters"
_lock = threading.Lock()
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class TraceCounters:
    """The counters (see the module docstring)."""

    accepted: Counter
    rejected: Counter
    skipped_items: Counter


def counters(ctx: ServerContext) -> TraceCounters:
    """The context's tracing counters, created and added to ``ctx.metrics`` the first time."""
    return once(ctx, _KEY, TraceCounters, _make_counters)


def _make_counters(ctx: ServerContext) -> TraceCounters:
    made = TraceCounters(
        accepted=Counter("opswatch_spans_accepted_total", "Spans stored, by source."),
        rejected=Counter("opswatch_spans_rejected_total", "Spans refused at ingest, by source and reason."),
        skipped_items=Counter(
            "opswatch_sentry_items_skipped_total", "Sentry envelope items not kept, by item type."
        ),
    )
    for counter in (made.accepted, made.rejected, made.skipped_items):
        ctx.metrics.add(counter)
    return made


def once(ctx: ServerContext, key: str, kind: type[T], make: Callable[[ServerContext], T]) -> T:
    """``ctx.extras[key]``, made by ``make(ctx)`` the first time (once, whatever the threads)."""
    found = ctx.extras.get(key)
    if isinstance(found, kind):
        return found
    with _lock:
        found = ctx.extras.get(key)
        if isinstance(found, kind):
            return found
        made = make(ctx)
        ctx.extras[key] = made
        return made
