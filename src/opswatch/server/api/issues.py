"""``/api/0/issues``: list, read and change issues (admin token required).

- ``GET  /api/0/issues`` filters ``status`` (unresolved — including regressed —, regressed, resolved,
  ignored, all), ``level``, ``query``, ``sort``, ``project``, ``limit``, ``offset``; answers
  ``{"items": [...], "total": N, "next_offset": N | null}``; each item has a 24-hour sparkline.
- ``GET  /api/0/issues/{id}``: the issue whole (latest event, counts, releases, environments, activity).
- ``POST /api/0/issues/{id}/resolve|reopen``: body optional ``{"actor": "ann"}``.
- ``POST /api/0/issues/{id}/ignore``: body ``{"duration": seconds}`` or ``{"until": "RFC 3339"}``, and/or
  ``{"count": N}``; neither means forever.
- ``GET  /api/0/issues/{id}/events``: the issue's events, newest first (``limit``, ``cursor``).

Handlers only parse and answer; the work is ``IssueService``'s. Bad filters answer 400 naming the filter,
an unknown issue 404.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request

from ..auth import get_context, require_admin
from ..issues import EXTRA
from ..issues.lifecycle import IssueNotFound
from ..issues.read import BadFilter
from ..issues.service import IssueService

router = APIRouter(prefix="/api/0/issues", tags=["issues"], dependencies=[Depends(require_admin)])

#: Events fetched whole from the event store per page of an issue's events.
MAX_EVENT_PAGE: Final = 100
_OptionalBody = Annotated[dict[str, Any] | None, Body()]


def _service(request: Request) -> IssueService:
    ctx = get_context(request)
    service = ctx.extras.get(EXTRA)
    return service if isinstance(service, IssueService) else IssueService(ctx.engine, now=ctx.now)


def _actor(body: dict[str, Any] | None) -> str:
    name = (body or {}).get("actor")
    if name is None or name == "":
        return "admin"
    if not isinstance(name, str) or len(name) > 100:
        raise HTTPException(400, "actor: expected a name of at most 100 characters")
    if name.startswith("system:"):  # reserved for the server's own changes
        name = "admin:" + name
    return name


def _time(value: Any, name: str) -> datetime.datetime:
    if not isinstance(value, str):
        raise HTTPException(400, f"{name}: expected an RFC 3339 time")
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name}: expected an RFC 3339 time, got {value[:40]!r}") from None
    return moment.replace(tzinfo=datetime.UTC) if moment.tzinfo is None else moment


@router.get("")
def list_issues(
    request: Request,
    status: str = "unresolved",
    level: str | None = None,
    query: str | None = Query(None, max_length=500),
    sort: str = "last_seen",
    project: int | None = None,
    limit: int = 25,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of issues matching the filters."""
    try:
        page = _service(request).list_issues(
            project_id=project, status=status, level=level, query=query, sort=sort, limit=limit, offset=offset
        )
    except BadFilter as err:
        raise HTTPException(400, str(err)) from None
    return {"items": page.items, "total": page.total, "next_offset": page.next_offset}


@router.get("/{issue_id:int}")
def get_issue(request: Request, issue_id: int) -> dict[str, Any]:
    """One issue whole."""
    try:
        return _service(request).get(issue_id)
    except IssueNotFound as err:
        raise HTTPException(404, str(err)) from None


@router.post("/{issue_id:int}/resolve")
def resolve(request: Request, issue_id: int, body: _OptionalBody = None) -> dict[str, Any]:
    """Resolve the issue (a later event regresses it)."""
    try:
        return _service(request).resolve(issue_id, _actor(body))
    except IssueNotFound as err:
        raise HTTPException(404, str(err)) from None


@router.post("/{issue_id:int}/reopen")
def reopen(request: Request, issue_id: int, body: _OptionalBody = None) -> dict[str, Any]:
    """Make a resolved or ignored issue unresolved."""
    try:
        return _service(request).reopen(issue_id, _actor(body))
    except IssueNotFound as err:
        raise HTTPException(404, str(err)) from None


@router.post("/{issue_id:int}/ignore")
def ignore(request: Request, issue_id: int, body: _OptionalBody = None) -> dict[str, Any]:
    """Ignore the issue for a while, until N more events, or forever."""
    body = body or {}
    until = _time(body["until"], "until") if body.get("until") is not None else None
    duration = None
    if body.get("duration") is not None:
        seconds = body["duration"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise HTTPException(400, "duration: expected seconds as a number")
        duration = datetime.timedelta(seconds=seconds)
    count = body.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise HTTPException(400, "count: expected a whole number of events")
    try:
        return _service(request).ignore(issue_id, _actor(body), until=until, duration=duration, count=count)
    except IssueNotFound as err:
        raise HTTPException(404, str(err)) from None
    except ValueError as err:
        raise HTTPException(400, str(err)) from None


@router.get("/{issue_id:int}/events")
def events(
    request: Request,
    issue_id: int,
    limit: int = 50,
    cursor: str | None = Query(None, max_length=200),
    full: bool = True,
) -> dict[str, Any]:
    """The issue's events, newest first: the stored records when ``full`` (default) and the event store
    still has them, else ids and times. Pass ``next_cursor`` back as ``cursor`` for the next page."""
    before = None
    if cursor:
        stamp, _, event_id = cursor.rpartition("/")
        if not event_id:
            raise HTTPException(400, "cursor: expected the next_cursor of a previous page")
        before = (_time(stamp, "cursor"), event_id)
    try:
        refs = _service(request).events(issue_id, limit=limit, before=before)
    except IssueNotFound as err:
        raise HTTPException(404, str(err)) from None
    except BadFilter as err:
        raise HTTPException(400, str(err)) from None
    items: list[dict[str, Any]] = refs
    if full and refs:
        stored = _stored_events(request, [ref["event_id"] for ref in refs[:MAX_EVENT_PAGE]])
        items = [stored.get(ref["event_id"], ref) for ref in refs]
    last = refs[-1] if len(refs) == limit else None
    return {"items": items, "next_cursor": f"{last['timestamp']}/{last['event_id']}" if last else None}


def _stored_events(request: Request, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The records the event store holds for ``event_ids`` (best effort: an empty answer on failure)."""
    ctx = get_context(request)
    try:
        return dict(ctx.store.get_events(event_ids))
    except Exception:  # the store may be busy or closed; ids and times still answer
        return {}
