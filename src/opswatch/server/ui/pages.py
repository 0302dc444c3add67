"""What the issues, crons, logs and query pages show: plain functions over the server context.

Each returns JSON-like dicts (the shapes the HTTP API answers, plus what a page needs to draw them) or
raises ``LookupError`` for something that does not exist, which the router answers with 404.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Final

from ...record import LEVEL_NUMBERS, module_relative_path
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
    its frames (caller to callee, as ``stack_frames`` shows them) and those frames in ``segments``:
    runs of application frames, and runs of library frames to fold (none folded when no frame is the
    application's, so that a stack of library frames alone stays readable)."""
    chain: list[dict[str, Any]] = []
    current = error
    while isinstance(current, Mapping) and len(chain) < 10:
        frames = stack_frames(current.get("stack"))
        has_app = any(not frame["library"] for frame in frames)
        # The source of the frame that raised (the innermost application frame) is open; the others
        # show their line and open on a click.
        for frame in reversed(frames):
            if frame["source"] and (not frame["library"] or not has_app):
                frame["expanded"] = True
                break
        segments: list[dict[str, Any]] = []
        for frame in frames:
            fold = frame["library"] and has_app
            if segments and segments[-1]["fold"] == fold:
                segments[-1]["frames"].append(frame)
            else:
                segments.append({"fold": fold, "frames": [frame]})
        for segment in segments:  # what a folded run goes through: ``opswatch, json``
            tops = (
                frame["path"].replace("\\", "/").lstrip("/").split("/", 1)[0] for frame in segment["frames"]
            )
            segment["packages"] = list(dict.fromkeys(tops))
        chain.append(
            {
                "type": current.get("type") or "Error",
                "message": current.get("message") or "",
                "frames": frames,
                "segments": segments,
                "folded": sum(len(segment["frames"]) for segment in segments if segment["fold"]),
            }
        )
        current = current.get("cause")
    return chain


#: Paths of installed packages, the standard library and runtimes' own code: never the application's.
_LIBRARY_PATH: Final = re.compile(
    r"(?:^|[/\\])(?:site-packages|dist-packages|node_modules)[/\\]|[/\\]lib[/\\]python\d[\d.]*[/\\]"
    r"|^<frozen|^node:"
)
#: Where a library's own path starts, to show ``django/db/utils.py`` instead of the whole install path.
_LIBRARY_ROOT: Final = re.compile(
    r"^.*(?:[/\\](?:site-packages|dist-packages|node_modules)[/\\]|[/\\]lib[/\\]python\d[\d.]*[/\\])"
)


def stack_frames(stack: Any) -> list[dict[str, Any]]:
    """A stack's frames as the issue page shows them: ``path`` (relative to the project or the library),
    ``line``, ``function``, ``library`` (not the application's: ``in_app`` false, installed packages
    and the standard library whatever the client said, opswatch's own modules when it did not say)
    and ``source``, the numbered context lines
    (``[(number, text, is_the_frame_line)]``, empty when the event carried none)."""
    if not isinstance(stack, list):
        return []
    out: list[dict[str, Any]] = []
    for frame in stack:
        if not isinstance(frame, Mapping):
            continue
        file = str(frame.get("file") or frame.get("filename") or frame.get("abs_path") or "")
        module = str(frame.get("module") or "")
        flag = frame.get("in_app")
        library = flag is False or bool(_LIBRARY_PATH.search(file))
        if flag is None:  # clients that do not say (common in Sentry events): opswatch is a library too
            library = library or module == "opswatch" or module.startswith("opswatch.")
        line = frame.get("line") if isinstance(frame.get("line"), int) else None
        out.append(
            {
                "path": _shown_path(file, module) or "?",
                "line": line,
                "function": frame.get("function") or "?",
                "library": library,
                "source": _source(frame, line),
                "expanded": False,
            }
        )
    return out


def _shown_path(file: str, module: str) -> str:
    if _LIBRARY_ROOT.match(file):
        return _LIBRARY_ROOT.sub("", file, count=1)
    if file.startswith("/") or file[1:3] in (":\\", ":/"):
        return module_relative_path(file, module) or file
    return file


def _source(frame: Mapping[str, Any], line: int | None) -> list[tuple[int | None, str, bool]]:
    context = frame.get("context_line")
    if not isinstance(context, str):
        return []
    pre = [text for text in frame.get("pre_context") or [] if isinstance(text, str)]
    post = [text for text in frame.get("post_context") or [] if isinstance(text, str)]
    first = None if line is None else line - len(pre)
    rows: list[tuple[int | None, str, bool]] = []
    for offset, text in enumerate([*pre, context, *post]):
        rows.append((None if first is None else first + offset, text, offset == len(pre)))
    return rows


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

    @property
    def numeric(self) -> frozenset[int]:
        """The columns whose values are all numbers (NULLs aside): their headers align right over them."""
        found = set()
        for index in range(len(self.columns)):
            values = [row[index] for row in self.rows if index < len(row) and row[index] is not None]
            if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                found.add(index)
        return frozenset(found)


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
