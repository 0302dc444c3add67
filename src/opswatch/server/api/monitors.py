"""``/api/0/monitors``: cron monitors, listed, created, changed, paused and deleted (admin token required).

- ``GET    /api/0/monitors``: ``project``, ``status``, ``limit`` (1..1000), ``offset`` filters; answers
  ``{"items": [...], "total": N, "next_offset": N | null, "rejected": [...]}``; ``rejected`` lists recent
  check-ins the server refused (unknown monitor without configuration, bad configuration).
- ``POST   /api/0/monitors``: ``{"slug": ..., "project": 1, "config": {"schedule": ..., ...}}`` (settings
  may also sit at the top level); 201 with the monitor, 400 naming a bad setting, 409 when it exists.
- ``GET    /api/0/monitors/{slug}``: the monitor whole (settings, health, recent runs and changes).
- ``PATCH  /api/0/monitors/{slug}``: only the settings sent change.
- ``DELETE /api/0/monitors/{slug}``; ``POST .../pause``, ``POST .../resume``.
- ``GET    /api/0/monitors/{slug}/runs``: the run history, newest first (``limit``).

A slug is unique within a project; ``?project=`` picks one when several projects use the same slug.
Handlers only parse and answer; the work is ``MonitorService``'s.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response

from ..auth import get_context, require_admin
from ..monitors import service_for
from ..monitors import views as monitor_views
from ..monitors.errors import AmbiguousMonitor, MonitorConfigError, MonitorExists, UnknownMonitor
from ..monitors.persist import Entry
from ..monitors.service import MonitorService
from ..state.projects import UnknownProject, get_project

router = APIRouter(prefix="/api/0/monitors", tags=["monitors"], dependencies=[Depends(require_admin)])

MAX_PAGE: Final = 1000
MAX_RUNS: Final = 1000
DEFAULT_PROJECT: Final = 1
_Body = Annotated[dict[str, Any] | None, Body()]


def _service(request: Request) -> MonitorService:
    return service_for(get_context(request))


def _find(service: MonitorService, slug: str, project: int | None) -> Entry:
    try:
        return service.find(slug, project)
    except UnknownMonitor as err:
        raise HTTPException(404, str(err)) from None
    except AmbiguousMonitor as err:
        raise HTTPException(409, str(err)) from None


def _settings(body: dict[str, Any] | None, *skip: str) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise HTTPException(400, "expected a JSON object")
    nested = body.get("config")
    if nested is not None:
        if not isinstance(nested, dict):
            raise HTTPException(400, "config: expected an object of monitor settings")
        return dict(nested)
    return {key: value for key, value in body.items() if key not in skip}


def _detail(service: MonitorService, entry: Entry) -> dict[str, Any]:
    stats = monitor_views.health(service.engine, [entry]).get(entry.id)
    return monitor_views.detail(entry, stats, service.runs(entry, 20), service.changes(entry, 20))


@router.get("")
def list_monitors(
    request: Request,
    project: int | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of monitors, sorted by project and slug, with their recent health."""
    if not 1 <= limit <= MAX_PAGE:
        raise HTTPException(400, f"limit: expected 1..{MAX_PAGE}")
    if offset < 0:
        raise HTTPException(400, "offset: expected 0 or more")
    if status is not None and status not in monitor_views.STATUSES:
        raise HTTPException(400, f"status: expected one of {', '.join(monitor_views.STATUSES)}")
    service = _service(request)
    entries = service.entries(project, status)
    page = entries[offset : offset + limit]
    stats = monitor_views.health(service.engine, page)
    rejected = [
        {
            "project_id": r.project_id,
            "slug": r.slug,
            "reason": r.reason,
            "count": r.count,
            "last_seen": monitor_views.iso(r.last_seen),
        }
        for r in service.rejections()
        if project is None or r.project_id == project
    ]
    return {
        "items": [monitor_views.summary(entry, stats.get(entry.id)) for entry in page],
        "total": len(entries),
        "next_offset": offset + limit if offset + limit < len(entries) else None,
        "rejected": rejected,
    }


@router.post("", status_code=201)
def create_monitor(request: Request, body: _Body = None) -> dict[str, Any]:
    """Create a monitor from a slug, a project and its settings."""
    if not isinstance(body, dict):
        raise HTTPException(400, "expected a JSON object with slug and config")
    slug = body.get("slug")
    project = body.get("project", body.get("project_id", DEFAULT_PROJECT))
    if not isinstance(project, int) or isinstance(project, bool):
        raise HTTPException(400, "project: expected a project id")
    ctx = get_context(request)
    try:
        get_project(ctx.engine, project)
    except UnknownProject as err:
        raise HTTPException(404, str(err)) from None
    if not isinstance(slug, str):
        raise HTTPException(400, "slug: expected the monitor's slug as text")
    service = _service(request)
    try:
        entry = service.create(project, slug, _settings(body, "slug", "project", "project_id"))
    except MonitorConfigError as err:
        raise HTTPException(400, str(err)) from None
    except MonitorExists as err:
        raise HTTPException(409, str(err)) from None
    return _detail(service, entry)


@router.get("/{slug}")
def get_monitor(request: Request, slug: str, project: int | None = None) -> dict[str, Any]:
    """The monitor whole."""
    service = _service(request)
    return _detail(service, _find(service, slug, project))


@router.patch("/{slug}")
def update_monitor(
    request: Request, slug: str, project: int | None = None, body: _Body = None
) -> dict[str, Any]:
    """Change the settings sent, and only those."""
    service = _service(request)
    entry = _find(service, slug, project)
    settings = _settings(body)
    if not settings:
        raise HTTPException(400, "send at least one setting to change")
    try:
        entry = service.update(entry, settings)
    except MonitorConfigError as err:
        raise HTTPException(400, str(err)) from None
    except UnknownMonitor as err:
        raise HTTPException(404, str(err)) from None
    return _detail(service, entry)


@router.delete("/{slug}")
def delete_monitor(request: Request, slug: str, project: int | None = None) -> Response:
    """Delete the monitor and its run history."""
    service = _service(request)
    service.delete(_find(service, slug, project))
    return Response(status_code=204)


@router.post("/{slug}/pause")
def pause_monitor(request: Request, slug: str, project: int | None = None) -> dict[str, Any]:
    """Stop judging the monitor; check-ins are still recorded."""
    service = _service(request)
    try:
        entry = service.pause(_find(service, slug, project))
    except UnknownMonitor as err:
        raise HTTPException(404, str(err)) from None
    return _detail(service, entry)


@router.post("/{slug}/resume")
def resume_monitor(request: Request, slug: str, project: int | None = None) -> dict[str, Any]:
    """Judge the monitor again, counting from now."""
    service = _service(request)
    try:
        entry = service.resume(_find(service, slug, project))
    except UnknownMonitor as err:
        raise HTTPException(404, str(err)) from None
    return _detail(service, entry)


@router.get("/{slug}/runs")
def list_runs(request: Request, slug: str, project: int | None = None, limit: int = 50) -> dict[str, Any]:
    """The run history, newest first."""
    if not 1 <= limit <= MAX_RUNS:
        raise HTTPException(400, f"limit: expected 1..{MAX_RUNS}")
    service = _service(request)
    entry = _find(service, slug, project)
    return {"items": [monitor_views.run_view(row) for row in service.runs(entry, limit)]}
