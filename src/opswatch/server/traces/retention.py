"""Span retention: deletes spans older than ``OPSWATCH_SPANS_RETENTION_DAYS``, on the events' schedule.

``install(ctx)`` adds a ``RetentionJob`` (the events' worker, same interval and first delay) whose
store deletes spans instead of events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..store.retention import RetentionJob

if TYPE_CHECKING:
    from ..context import ServerContext


class SpanDeletes:
    """The store seen through its span retention: ``delete_older_than`` deletes spans."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def delete_older_than(self, days: int) -> int:
        """Delete spans that started more than ``days`` days ago; return how many went."""
        deleted: int = self.store.delete_spans_older_than(days)
        return deleted


def install(ctx: ServerContext) -> None:
    """Add the span retention worker for ``ctx.store`` with ``ctx.settings.spans_retention_days``."""
    ctx.background.append(RetentionJob(SpanDeletes(ctx.store), ctx.settings.spans_retention_days))
