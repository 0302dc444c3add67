"""What the overview page shows, gathered from every part of the server.

``overview(ctx)`` asks the event store (events per hour over a day, per minute over the last hour, by
level, through the read-only query layer), the issues service (unresolved issues), the monitor service
(monitors that are not ok) and the notifier (each alert channel's last success and last error). A part
that is not installed or fails is left out with a note; the page still renders.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Final

from ..context import ServerContext
from ..query import run_query
from ..store.base import QueryError
from .services import issue_service, monitor_service

#: Monitor statuses the overview lists as needing attention.
BAD_MONITOR_STATUSES: Final = ("failing", "error", "missed", "timeout")
#: How many unresolved issues and failing monitors the overview lists.
LIST_LIMIT: Final = 8
#: Time limit of each overview query, in seconds.
QUERY_TIMEOUT: Final = 10.0

_UNITS: Final = {"hour": datetime.timedelta(hours=1), "minute": datetime.timedelta(minutes=1)}


@dataclasses.dataclass(frozen=True)
class Series:
    """Events per time bucket, oldest first: ``labels`` (UTC), ``events``, ``errors``, ``warnings``."""

    unit: str
    labels: list[str]
    events: list[int]
    errors: list[int]
    warnings: list[int]

    @property
    def titles(self) -> list[str]:
        """A tooltip per bucket."""
        return [
            f"{label}: {events} events, {errors} errors, {warnings} warnings"
            for label, events, errors, warnings in zip(
                self.labels, self.events, self.errors, self.warnings, strict=True
            )
        ]


@dataclasses.dataclass
class Overview:
    """Everything on the overview page; a part is None when it could not be read (see ``notes``)."""

    hourly: Series | None = None
    minutely: Series | None = None
    issues: list[dict[str, Any]] | None = None
    issues_total: int = 0
    monitors: list[dict[str, Any]] | None = None
    monitors_total: int = 0
    monitors_bad: int = 0
    channels: list[dict[str, Any]] | None = None
    alert_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def events_24h(self) -> int:
        """Events stored over the last 24 hours."""
        return sum(self.hourly.events) if self.hourly else 0

    @property
    def errors_24h(self) -> int:
        """Error and fatal events over the last 24 hours."""
        return sum(self.hourly.errors) if self.hourly else 0

    @property
    def warnings_24h(self) -> int:
        """Warnings over the last 24 hours."""
        return sum(self.hourly.warnings) if self.hourly else 0


def activity(store: Any, now: datetime.datetime, unit: str, buckets: int) -> Series:
    """Events per ``unit`` (``hour`` or ``minute``) over the last ``buckets`` of them, the current one last.

    Raises ``QueryError`` when the store cannot answer.
    """
    step = _UNITS[unit]
    current = _truncate(now.astimezone(datetime.UTC), unit)
    start = current - step * (buckets - 1)
    end = current + step
    sql = (
        f"SELECT date_trunc('{unit}', timestamp) AS bucket, COUNT(*) AS events, "
        "SUM(CASE WHEN level IN ('error', 'fatal') THEN 1 ELSE 0 END) AS errors, "
        "SUM(CASE WHEN level = 'warn' THEN 1 ELSE 0 END) AS warnings "
        f"FROM logs WHERE timestamp >= TIMESTAMP '{_sql_time(start)}' "
        f"AND timestamp < TIMESTAMP '{_sql_time(end)}' GROUP BY bucket ORDER BY bucket"
    )
    result = run_query(store, sql, max_rows=buckets + 1, timeout=QUERY_TIMEOUT)
    events, errors, warnings = [0] * buckets, [0] * buckets, [0] * buckets
    for bucket, total, bad, warned in result.rows:
        if not isinstance(bucket, datetime.datetime):
            continue
        moment = bucket if bucket.tzinfo else bucket.replace(tzinfo=datetime.UTC)
        index = int((moment - start) / step)
        if 0 <= index < buckets:
            events[index] += int(total or 0)
            errors[index] += int(bad or 0)
            warnings[index] += int(warned or 0)
    label_format = "%H:00" if unit == "hour" else "%H:%M"
    labels = [(start + step * i).strftime(label_format) for i in range(buckets)]
    return Series(unit, labels, events, errors, warnings)


def _truncate(moment: datetime.datetime, unit: str) -> datetime.datetime:
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def _sql_time(moment: datetime.datetime) -> str:
    """A UTC time as DuckDB ``TIMESTAMP`` text (the store keeps UTC without a zone)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def channel_health(notifier: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Each alert channel's status (name, failed, last error and success, last send's duration, counts)
    and the notifier's totals; empty when no notifier is configured."""
    if notifier is None or not hasattr(notifier, "stats"):
        return [], {}
    stats = notifier.stats()
    channels = [
        {"name": name, **status} for name, status in sorted(dict(stats.get("channels") or {}).items())
    ]
    totals = {key: int(stats.get(key, 0) or 0) for key in ("sent", "failed", "dropped", "queued")}
    return channels, totals


def overview(ctx: ServerContext) -> Overview:
    """Gather the overview (see the module docstring)."""
    now = ctx.now()
    result = Overview()
    try:
        result.hourly = activity(ctx.store, now, "hour", 24)
        result.minutely = activity(ctx.store, now, "minute", 60)
    except QueryError as err:
        result.notes.append(f"Event counts are unavailable: {err}")
    issues = issue_service(ctx)
    if issues is None:
        result.notes.append("Issues are not installed on this server.")
    else:
        page = issues.list_issues(status="unresolved", sort="last_seen", limit=LIST_LIMIT)
        result.issues, result.issues_total = page.items, page.total
    monitors = monitor_service(ctx)
    if monitors is None:
        result.notes.append("Cron monitoring is not installed on this server.")
    else:
        from ..monitors import views

        entries = monitors.entries()
        bad = [entry for entry in entries if entry.state.status in BAD_MONITOR_STATUSES]
        stats = views.health(monitors.engine, bad[:LIST_LIMIT])
        result.monitors = [views.summary(entry, stats.get(entry.id)) for entry in bad[:LIST_LIMIT]]
        result.monitors_total, result.monitors_bad = len(entries), len(bad)
    try:
        result.channels, result.alert_counts = channel_health(ctx.notifier)
    except Exception as err:  # a notifier's stats must not take the page down
        result.notes.append(f"Alert channel status is unavailable: {type(err).__name__}")
    return result
