"""Cron monitoring on the server: check-ins in, missed/timeout/failing/recovered decided, changes out.

``install(ctx)`` is listed in ``opswatch.server.app.SUBSYSTEMS``. It creates the tables, loads every
monitor into a ``MonitorService``, registers the ingest hook that applies ``check_in`` records, and adds
the ``CronClock`` (ticks every second, drains the outbox) to ``ctx.background``. The API and CLI reach
the service through ``service_for(ctx)``.

The parts: ``engine`` (the pure rules), ``config`` (settings a check-in or the API may send),
``slots`` (schedule math, from ``opswatch.crons.schedule``), ``checkins`` (reading check-in records),
``persist`` (conditional writes), ``service`` (memory, deadline heap, durability), ``outbox`` and
``notify`` (state changes to the event store and the notifier), ``run_errors`` (what failed in a run,
for the failing message), ``clock`` (the background worker),
``views`` (what the API shows).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from .clock import CronClock
from .outbox import Outbox, Sink
from .run_errors import FailureExplainer
from .service import MonitorService

__all__ = ["CronClock", "MonitorService", "install", "service_for"]

#: The key of the service in ``ctx.extras``.
EXTRA = "monitors"


def epoch_clock(now: Callable[[], Any]) -> Callable[[], float]:
    """``now`` as seconds since the epoch, whether it returns a float or an aware datetime."""

    def clock() -> float:
        value = now()
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=datetime.UTC)
            return value.timestamp()
        return float(value)

    return clock


def install(ctx: Any) -> MonitorService:
    """Set up cron monitoring for a server context; returns the service (also ``service_for(ctx)``)."""
    notifier = getattr(ctx, "notifier", None)
    wanted = bool(getattr(ctx.settings, "notify_cron_failures", True))
    service = MonitorService(
        ctx.engine,
        now=epoch_clock(ctx.now),
        notifications=notifier is not None and wanted,
        retention_days=int(getattr(ctx.settings, "retention_days", 30) or 30),
    )
    base_url = str(getattr(ctx.settings, "base_url", "") or "")
    explain = FailureExplainer(service.run_errors, ctx.engine, base_url)
    from ..rules.outbox_rules import OutboxGate  # the rules decide, once they are installed

    gate = OutboxGate(ctx)
    outbox = Outbox(ctx.engine, _sink(ctx), notifier, explain, gate=gate, channels=gate.channels)
    clock = CronClock(service, outbox)
    service.on_change = clock.wake
    ctx.hooks.append(service.hook)
    ctx.background.append(clock)
    ctx.extras[EXTRA] = service
    return service


def service_for(ctx: Any) -> MonitorService:
    """The monitor service installed on ``ctx``; ``LookupError`` when cron monitoring is not installed."""
    service = ctx.extras.get(EXTRA)
    if not isinstance(service, MonitorService):
        raise LookupError("cron monitoring is not installed on this server (SUBSYSTEMS in server/app.py)")
    return service


def refusal_for(ctx: Any, project_id: int, record: Mapping[str, Any]) -> str | None:
    """Why a check-in would be refused, for handlers that can still answer the sender; None if it is fine.

    None as well when cron monitoring is not installed (the check-in is then only stored).
    """
    try:
        service = service_for(ctx)
    except LookupError:
        return None
    return service.refusal(project_id, record)


def _sink(ctx: Any) -> Sink | None:
    """Where state-change records go: through the pipeline (so hooks see them) or straight to the store."""
    pipeline = getattr(ctx, "pipeline", None)
    if pipeline is not None and hasattr(pipeline, "ingest"):

        def through_pipeline(project_id: int, records: list[dict[str, Any]]) -> object:
            return pipeline.ingest(project_id, records, "monitors")

        return through_pipeline
    store = getattr(ctx, "store", None)
    if store is not None:

        def to_store(_project_id: int, records: list[dict[str, Any]]) -> object:
            return store.append(records)

        return to_store
    return None
