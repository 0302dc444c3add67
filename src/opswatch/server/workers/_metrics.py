"""What workers count reaches the owner's ``/metrics``: one scrape answers for every process.

The ingest handlers count in the worker that ran them (requests by endpoint and status, rejections by
reason, what SDKs reported dropping, spans, request latency). Every ``SHARE_SECONDS``, and once more
when it stops, a worker sends ``("metrics", 0, changes)``: for each counter and histogram of its
``Metrics`` that moved since the last time, by how much. The owner adds the changes to its metrics of
the same name. What the owner counts itself (events accepted, duplicates, hook failures, commit
latency) is counted there as with one process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..metrics import Counter, Histogram

if TYPE_CHECKING:
    from ..context import ServerContext

#: Seconds between two shares of a worker's counts (how stale the owner's ``/metrics`` may be).
SHARE_SECONDS = 1.0


def collectors(ctx: ServerContext) -> dict[str, Counter | Histogram]:
    """The context's counters and histograms by name (the tracing counters made if not yet)."""
    from ..traces.counters import counters

    counters(ctx)  # both processes know them before the first span arrives
    metrics = vars(ctx.metrics)
    found: dict[str, Counter | Histogram] = {}
    for item in [*metrics.values(), *metrics.get("_extra", ())]:
        if isinstance(item, (Counter, Histogram)):
            found[item.name] = item
    return found


class Changes:
    """A worker's counts since the last ``take``."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._last: dict[str, Any] = {}

    def take(self) -> dict[str, tuple[str, Any]]:
        """What moved since the last call (empty when nothing did)."""
        changes: dict[str, tuple[str, Any]] = {}
        for name, metric in collectors(self.ctx).items():
            if isinstance(metric, Counter):
                now = metric.series()
                before = self._last.get(name, {})
                moved = {labels: value - before.get(labels, 0) for labels, value in now.items()}
                moved = {labels: amount for labels, amount in moved.items() if amount}
                if moved:
                    changes[name] = ("counter", moved)
                self._last[name] = now
            else:
                counts, total, count = metric.state()
                old_counts, old_total, old_count = self._last.get(name, ([0] * len(counts), 0.0, 0))
                if count != old_count:
                    deltas = [new - old for new, old in zip(counts, old_counts, strict=True)]
                    changes[name] = ("histogram", (deltas, total - old_total, count - old_count))
                self._last[name] = (counts, total, count)
        return changes


def merge(ctx: ServerContext, changes: dict[str, tuple[str, Any]]) -> None:
    """Add a worker's ``changes`` to the owner's metrics of the same names (unknown names are skipped)."""
    known = collectors(ctx)
    for name, (kind, change) in changes.items():
        metric = known.get(name)
        if kind == "counter" and isinstance(metric, Counter):
            for labels, amount in change.items():
                metric.inc(amount, **dict(labels))
        elif kind == "histogram" and isinstance(metric, Histogram):
            metric.merge(*change)
