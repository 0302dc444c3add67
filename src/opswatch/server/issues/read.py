"""Reading issues for the API and the command line: lists with filters and sparklines, one issue whole.

Every function returns JSON-ready dicts (times as RFC 3339 UTC text, levels as names), the shape the HTTP
API answers and ``opswatch issues`` prints.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

import orjson
from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from ...record import LEVEL_NAMES, level_name, parse_level
from ..state.issues import (
    OPEN_STATUSES,
    STATUSES,
    Issue,
    IssueActivity,
    IssueEvent,
    IssueHash,
    IssueHourlyCount,
    IssueTagValue,
)
from ._sql import iso
from .lifecycle import IssueNotFound

#: How the list can be ordered (newest or largest first); aliases map to these.
SORTS: Final = {
    "last_seen": Issue.last_seen,
    "first_seen": Issue.first_seen,
    "times_seen": Issue.times_seen,
    "level": Issue.level,
}
SORT_ALIASES: Final = {"date": "last_seen", "new": "first_seen", "freq": "times_seen", "events": "times_seen"}
#: Status filter values: one of ``STATUSES``, or ``all``. ``unresolved`` includes ``regressed``.
STATUS_FILTERS: Final = (*STATUSES, "all")
#: Most issues in one page.
MAX_LIMIT: Final = 500
#: Hours in a list sparkline; days in the issue page's long view.
SPARKLINE_HOURS: Final = 24
DETAIL_DAYS: Final = 30
#: Search tokens ``key:value`` that filter on an issue field or on a value seen on its events.
_TOKEN = re.compile(r'(\w+):("[^"]*"|\S+)|"([^"]*)"|(\S+)')


class BadFilter(ValueError):
    """A filter value the API should answer with 400; the message names the filter."""


@dataclasses.dataclass(frozen=True)
class Page:
    """A page of issues: ``items``, how many match in all, and the next offset (None at the end)."""

    items: list[dict[str, Any]]
    total: int
    next_offset: int | None


def issue_dict(row: Any) -> dict[str, Any]:
    """One issue row as JSON (without the latest event's body)."""
    return {
        "id": row.id,
        "project_id": row.project_id,
        "status": row.status,
        "level": level_name(row.level),
        "title": row.title,
        "culprit": row.culprit,
        "type": row.error_type,
        "logger": row.logger,
        "operation": row.operation,
        "count": int(row.times_seen),
        "first_seen": iso(row.first_seen),
        "last_seen": iso(row.last_seen),
        "first_release": row.first_release,
        "last_release": row.last_release,
        "first_event_id": row.first_event_id,
        "latest_event_id": row.latest_event_id,
        "status_changed_at": iso(row.status_changed_at),
        "resolved_at": iso(row.resolved_at),
        "ignore_until": iso(row.ignore_until),
        "ignore_until_count": row.ignore_until_count,
        "times_regressed": int(row.times_regressed),
        "grouping": {"version": row.grouping_version, **(row.grouping or {})},
    }


_LIST_COLUMNS = [c for c in Issue.__table__.columns if c.name != "latest_event"]


def _status_clause(status: str) -> ColumnElement[bool] | None:
    if status not in STATUS_FILTERS:
        raise BadFilter(f"status: expected one of {', '.join(STATUS_FILTERS)}, got {status!r}")
    if status == "all":
        return None
    if status == "unresolved":
        return Issue.status.in_(OPEN_STATUSES)
    return Issue.status == status


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _query_clauses(query: str) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for key, keyed_value, quoted, word in _TOKEN.findall(query):
        if key:
            value = keyed_value.strip('"')
            key = key.lower()
            if key in ("release", "environment", "operation"):
                clauses.append(
                    Issue.id.in_(
                        select(IssueTagValue.issue_id).where(
                            IssueTagValue.key == key, IssueTagValue.value == value
                        )
                    )
                )
                continue
            if key == "type":
                clauses.append(func.lower(Issue.error_type).like(_like(value), escape="\\"))
                continue
            if key == "is":
                status_clause = _status_clause(value.lower())
                if status_clause is not None:
                    clauses.append(status_clause)
                continue
            word = f"{key}:{keyed_value}"
        text = quoted or word
        pattern = _like(text)
        clauses.append(
            or_(
                func.lower(Issue.title).like(pattern, escape="\\"),
                func.lower(Issue.culprit).like(pattern, escape="\\"),
                func.lower(func.coalesce(Issue.operation, "")).like(pattern, escape="\\"),
            )
        )
    return clauses


def list_issues(
    conn: Connection,
    now: datetime.datetime,
    *,
    project_id: int | None = None,
    status: str = "unresolved",
    level: str | None = None,
    query: str | None = None,
    sort: str = "last_seen",
    limit: int = 25,
    offset: int = 0,
) -> Page:
    """Issues matching the filters, newest (or largest) first, each with a 24-hour sparkline.

    ``query`` holds words matched in the title, culprit and operation, and ``key:value`` tokens:
    ``operation:``, ``release:``, ``environment:`` (values seen on events), ``type:`` (substring),
    ``is:resolved`` .... Raises ``BadFilter`` for an unknown status, level or sort.
    """
    clauses: list[ColumnElement[bool]] = []
    if project_id is not None:
        clauses.append(Issue.project_id == project_id)
    status_clause = _status_clause(status)
    if status_clause is not None:
        clauses.append(status_clause)
    if level:
        try:
            clauses.append(Issue.level == parse_level(level))
        except ValueError:
            raise BadFilter(
                f"level: expected one of {', '.join(LEVEL_NAMES.values())}, got {level!r}"
            ) from None
    if query:
        clauses.extend(_query_clauses(query))
    sort = SORT_ALIASES.get(sort, sort)
    if sort not in SORTS:
        raise BadFilter(f"sort: expected one of {', '.join([*SORTS, *SORT_ALIASES])}, got {sort!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadFilter(f"limit: expected 1..{MAX_LIMIT}, got {limit}")
    if offset < 0:
        raise BadFilter(f"offset: expected 0 or more, got {offset}")
    where = and_(*clauses) if clauses else None
    total_query = select(func.count()).select_from(Issue)
    rows_query = (
        select(*_LIST_COLUMNS).order_by(SORTS[sort].desc(), Issue.id.desc()).limit(limit).offset(offset)
    )
    if where is not None:
        total_query = total_query.where(where)
        rows_query = rows_query.where(where)
    total = int(conn.execute(total_query).scalar_one())
    rows = conn.execute(rows_query).all()
    items = [issue_dict(row) for row in rows]
    lines = sparklines(conn, [item["id"] for item in items], now, SPARKLINE_HOURS)
    for item in items:
        item["counts_24h"] = lines[item["id"]]
    next_offset = offset + len(items) if offset + len(items) < total else None
    return Page(items, total, next_offset)


def _hour(value: datetime.datetime) -> datetime.datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def sparklines(
    conn: Connection, issue_ids: Sequence[int], now: datetime.datetime, hours: int
) -> dict[int, list[int]]:
    """Events per hour for each issue over the last ``hours`` hours, oldest first (the current hour last)."""
    end = _hour(now)
    start = end - datetime.timedelta(hours=hours - 1)
    lines = {issue_id: [0] * hours for issue_id in issue_ids}
    if not issue_ids:
        return lines
    rows = conn.execute(
        select(IssueHourlyCount.issue_id, IssueHourlyCount.hour, IssueHourlyCount.count).where(
            IssueHourlyCount.issue_id.in_(list(issue_ids)),
            IssueHourlyCount.hour >= start,
            IssueHourlyCount.hour <= end,
        )
    )
    for issue_id, hour, count in rows:
        index = int((hour - start).total_seconds() // 3600)
        if 0 <= index < hours:
            lines[issue_id][index] += int(count)
    return lines


def daily_counts(conn: Connection, issue_id: int, now: datetime.datetime, days: int) -> list[int]:
    """Events per UTC day over the last ``days`` days, oldest first (today last)."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - datetime.timedelta(days=days - 1)
    counts = [0] * days
    rows = conn.execute(
        select(IssueHourlyCount.hour, IssueHourlyCount.count).where(
            IssueHourlyCount.issue_id == issue_id, IssueHourlyCount.hour >= start
        )
    )
    for hour, count in rows:
        index = (hour - start).days
        if 0 <= index < days:
            counts[index] += int(count)
    return counts


def get_issue(conn: Connection, issue_id: int, now: datetime.datetime) -> dict[str, Any]:
    """One issue whole: its fields, the latest event, counts (24 hours, 30 days), the values seen on its
    events, its hashes and its activity. Raises ``IssueNotFound``."""
    row = conn.execute(select(Issue).where(Issue.id == issue_id)).first()
    if row is None:
        raise IssueNotFound(f"no issue {issue_id}")
    result = issue_dict(row)
    result["latest_event"] = orjson.loads(row.latest_event) if row.latest_event else None
    result["counts_24h"] = sparklines(conn, [issue_id], now, SPARKLINE_HOURS)[issue_id]
    result["counts_30d"] = daily_counts(conn, issue_id, now, DETAIL_DAYS)
    tags: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for tag in conn.execute(
        select(IssueTagValue)
        .where(IssueTagValue.issue_id == issue_id)
        .order_by(IssueTagValue.times_seen.desc())
    ):
        tags[tag.key].append(
            {
                "value": tag.value,
                "count": int(tag.times_seen),
                "first_seen": iso(tag.first_seen),
                "last_seen": iso(tag.last_seen),
            }
        )
    result["releases"] = tags.get("release", [])
    result["environments"] = tags.get("environment", [])
    result["operations"] = tags.get("operation", [])
    result["hashes"] = [
        {"hash": h.hash, "grouping_version": h.grouping_version}
        for h in conn.execute(select(IssueHash).where(IssueHash.issue_id == issue_id))
    ]
    result["activity"] = activity_of(conn, issue_id)
    return result


def activity_of(conn: Connection, issue_id: int) -> list[dict[str, Any]]:
    """The issue's state changes, oldest first."""
    return [
        {
            "at": iso(a.at),
            "actor": a.actor,
            "kind": a.kind,
            "from": a.from_status,
            "to": a.to_status,
            "data": a.data,
        }
        for a in conn.execute(
            select(IssueActivity).where(IssueActivity.issue_id == issue_id).order_by(IssueActivity.id)
        )
    ]


def event_refs(
    conn: Connection, issue_id: int, *, limit: int = 50, before: tuple[datetime.datetime, str] | None = None
) -> list[dict[str, Any]]:
    """The issue's events (id and time), newest first. ``before`` (a time and an event id, the last item
    of the previous page) pages back without skipping events that share a time. Raises ``IssueNotFound``.
    """
    if conn.execute(select(Issue.id).where(Issue.id == issue_id)).first() is None:
        raise IssueNotFound(f"no issue {issue_id}")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadFilter(f"limit: expected 1..{MAX_LIMIT}, got {limit}")
    query = select(IssueEvent.event_id, IssueEvent.timestamp).where(IssueEvent.issue_id == issue_id)
    if before is not None:
        moment, event_id = before
        query = query.where(
            or_(
                IssueEvent.timestamp < moment,
                and_(IssueEvent.timestamp == moment, IssueEvent.event_id < event_id),
            )
        )
    rows = conn.execute(query.order_by(IssueEvent.timestamp.desc(), IssueEvent.event_id.desc()).limit(limit))
    return [{"event_id": event_id, "timestamp": iso(ts)} for event_id, ts in rows]
