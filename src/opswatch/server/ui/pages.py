"""What the issues, crons, logs and query pages show: plain functions over the server context.

Each returns JSON-like dicts (the shapes the HTTP API answers, plus what a page needs to draw them) or
raises ``LookupError`` for something that does not exist, which the router answers with 404.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from ...record import LEVEL_NUMBERS
from ..context import ServerContext
from ..query import jsonable, run_query, truncation_notice
from ..store.base import QueryError
from .services import issue_service, monitor_service

#: Issues per page of the list.
ISSUES_PER_PAGE: Final = 25
#: Events the logs page shows at most, and by default.
MAX_LOG_LINES: Final = 500
DEFAULT_LOG_LINES: Final = 100
#: Rows and seconds a dashboard query may take.
QUERY_ROWS: Final = 1000
QUERY_TIMEOUT: Final = 30.0
#: Runs and state changes on a monitor's page.
RUN_HISTORY: Final = 50
#: Issue statuses the list can filter on.
ISSUE_STATUSES: Final = ("unresolved", "regressed", "resolved", "ignored", "all")
#: Ignore choices on an issue's page: label and seconds (None: forever).
IGNORE_CHOICES: Final = (
    ("for 1 hour", 3600),
    ("for 24 hours", 86400),
    ("for 7 days", 604800),
    ("forever", None),
)
#: The query box's starting SQL: the seed's "top churches by donation volume".
DEFAULT_SQL: Final = """SELECT
  churchId,
  COUNT(*) AS donation_count,
  SUM(amount) AS total_amount
FROM logs
WHERE operation = 'metrics.donation.completed'
GROUP BY churchId
ORDER BY total_amount DESC
LIMIT 10"""

#: Fields a log line shows in its columns; the rest go under "details".
_SHOWN_FIELDS: Final = frozenset({"timestamp", "level", "message", "operation", "service"})


class NotInstalled(LookupError):
    """A page's subsystem is not installed on this server."""


# -- issues ------------------------------------------------------------------------------------------


def issue_list(ctx: ServerContext, *, status: str, query: str, offset: int) -> dict[str, Any]:
    """A page of issues for the filters (``ValueError`` for a bad filter)."""
    service = issue_service(ctx)
    if service is None:
        raise NotInstalled("issues are not installed on this server")
    page = service.list_issues(
        status=status, query=query or None, sort="last_seen", limit=ISSUES_PER_PAGE, offset=offset
    )
    return {"items": page.items, "total": page.total, "next_offset": page.next_offset}


def issue_detail(ctx: ServerContext, issue_id: int) -> dict[str, Any]:
    """One issue whole, plus its latest event's exceptions (outermost first) and other fields."""
    service = issue_service(ctx)
    if service is None:
        raise NotInstalled("issues are not installed on this server")
    from ..issues.lifecycle import IssueNotFound

    try:
        issue = service.get(issue_id)
    except IssueNotFound as err:
        raise LookupError(str(err)) from None
    event = issue.get("latest_event") or {}
    issue["exceptions"] = exception_chain(event.get("error"))
    issue["event_fields"] = {
        key: value for key, value in event.items() if key not in ("error", "message", "level", "timestamp")
    }
    return issue


def exception_chain(error: Any) -> list[dict[str, Any]]:
    """An event's ``error`` and its causes as a list (the raised one first, then its causes), each with
    its frames (caller to callee) and whether library frames should be dimmed."""
    chain: list[dict[str, Any]] = []
    current = error
    while isinstance(current, Mapping) and len(chain) < 10:
        frames = [frame for frame in current.get("stack") or [] if isinstance(frame, Mapping)]
        chain.append(
            {
                "type": current.get("type") or "Error",
                "message": current.get("message") or "",
                "frames": frames,
                # Library frames are dimmed only when there are application frames to stand out.
                "dim_libraries": any(frame.get("in_app") for frame in frames),
            }
        )
        current = current.get("cause")
    return chain


# -- cron monitors -----------------------------------------------------------------------------------


def monitor_list(ctx: ServerContext) -> list[dict[str, Any]]:
    """Every monitor's summary with its recent health, sorted by project and slug."""
    service = monitor_service(ctx)
    if service is None:
        raise NotInstalled("cron monitoring is not installed on this server")
    from ..monitors import views

    entries = service.entries()
    stats = views.health(service.engine, entries)
    return [views.summary(entry, stats.get(entry.id)) for entry in entries]


def monitor_detail(ctx: ServerContext, slug: str, project: int | None = None) -> dict[str, Any]:
    """A monitor whole: summary, settings, run history and state changes."""
    service = monitor_service(ctx)
    if service is None:
        raise NotInstalled("cron monitoring is not installed on this server")
    from ..monitors import views
    from ..monitors.errors import AmbiguousMonitor, UnknownMonitor

    try:
        entry = service.find(slug, project)
    except (UnknownMonitor, AmbiguousMonitor) as err:
        raise LookupError(str(err)) from None
    stats = views.health(service.engine, [entry]).get(entry.id)
    return views.detail(entry, stats, service.runs(entry, RUN_HISTORY), service.changes(entry, RUN_HISTORY))


# -- logs ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LogFilters:
    """The logs page's filters, checked: a level name or None, an operation (``*`` suffix for a prefix),
    a text to find in messages, and how many lines."""

    level: str | None = None
    operation: str = ""
    text: str = ""
    limit: int = DEFAULT_LOG_LINES

    @classmethod
    def parse(
        cls, level: str | None, operation: str | None, text: str | None, limit: str | None
    ) -> LogFilters:
        """Filters from query parameters; ``ValueError`` naming the bad one."""
        name = (level or "").strip().lower() or None
        if name is not None and name not in LEVEL_NUMBERS:
            raise ValueError(f"level: expected one of trace, debug, info, warn, error, fatal; got {name!r}")
        lines = DEFAULT_LOG_LINES
        if limit:
            if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_LOG_LINES:
                raise ValueError(f"limit: expected 1..{MAX_LOG_LINES}")
            lines = int(limit)
        return cls(name, (operation or "").strip()[:200], (text or "").strip()[:200], lines)


def recent_events(ctx: ServerContext, filters: LogFilters) -> list[dict[str, Any]]:
    """The latest events matching ``filters``, newest first, each with its other fields as ``details``."""
    page = ctx.store.tail(
        None,
        level=filters.level,
        operation=filters.operation or None,
        text=filters.text or None,
        limit=filters.limit,
    )
    lines = []
    for record in reversed(page.records):
        details = {key: value for key, value in record.items() if key not in _SHOWN_FIELDS}
        lines.append({**record, "details": details})
    return lines


# -- query -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class QueryAnswer:
    """A query's table, or the reason it was refused or failed."""

    columns: list[str] = dataclasses.field(default_factory=list)
    rows: list[list[Any]] = dataclasses.field(default_factory=list)
    elapsed_ms: float = 0.0
    notice: str | None = None
    error: str | None = None


def run_sql(ctx: ServerContext, sql: str) -> QueryAnswer:
    """Run ``sql`` through the read-only query layer, with the dashboard's row cap and time limit."""
    try:
        result = run_query(ctx.store, sql, max_rows=QUERY_ROWS, timeout=QUERY_TIMEOUT)
    except QueryError as err:
        return QueryAnswer(error=str(err) or type(err).__name__)
    return QueryAnswer(
        columns=list(result.columns),
        rows=[[jsonable(value) for value in row] for row in result.rows],
        elapsed_ms=result.elapsed_ms,
        notice=truncation_notice(result),
    )
