"""``/api/0/projects``: projects and their ingest keys (admin token).

* ``GET  /api/0/projects``: every project with its keys and each key's DSN.
* ``POST /api/0/projects`` ``{"name": "..."}``: a new project with one key (201; 409 if the name is taken).
* ``GET  /api/0/projects/{id}/keys``, ``POST /api/0/projects/{id}/keys`` ``{"label": "..."}``: list, add.
* ``POST /api/0/keys/{key}/revoke`` and ``/enable``: stop or restart ingest with a key.

DSNs use ``OPSWATCH_PUBLIC_URL`` when set, else the URL the request came to.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..auth import get_context, require_admin
from ..state import projects
from ._answers import json_response

router = APIRouter(prefix="/api/0", tags=["projects"], dependencies=[Depends(require_admin)])


def _base_url(request: Request) -> str:
    ctx = get_context(request)
    if ctx.settings.public_url:
        return ctx.settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def _dsn(base: str, key: str, project_id: int) -> str:
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{key}@{rest}/{project_id}"


def _key(base: str, key: projects.KeyInfo) -> dict[str, Any]:
    return {**dataclasses.asdict(key), "dsn": _dsn(base, key.key, key.project_id)}


def _project(base: str, project: projects.ProjectInfo) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "created_at": project.created_at,
        "keys": [_key(base, k) for k in project.keys],
    }


@router.get("/projects")
async def list_projects(request: Request) -> Response:
    """Every project with its keys."""
    ctx = get_context(request)
    found = await run_in_threadpool(projects.list_projects, ctx.engine)
    base = _base_url(request)
    return json_response({"projects": [_project(base, p) for p in found]})


@router.post("/projects")
async def create_project(request: Request, body: Annotated[dict[str, Any], Body()]) -> Response:
    """A new project with one key."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise HTTPException(400, "name: expected a project name")
    ctx = get_context(request)
    try:
        project = await run_in_threadpool(projects.create_project, ctx.engine, name)
    except projects.ProjectExists as err:
        raise HTTPException(409, str(err)) from None
    except ValueError as err:
        raise HTTPException(400, f"name: {err}") from None
    ctx.keys.forget()
    return json_response(_project(_base_url(request), project), 201)


@router.get("/projects/{project_id:int}/keys")
async def list_keys(project_id: int, request: Request) -> Response:
    """The keys of one project."""
    ctx = get_context(request)
    try:
        project = await run_in_threadpool(projects.get_project, ctx.engine, project_id)
    except projects.UnknownProject as err:
        raise HTTPException(404, str(err)) from None
    base = _base_url(request)
    return json_response({"keys": [_key(base, k) for k in project.keys]})


@router.post("/projects/{project_id:int}/keys")
async def create_key(
    project_id: int, request: Request, body: Annotated[dict[str, Any] | None, Body()] = None
) -> Response:
    """Add a key to a project."""
    label = (body or {}).get("label") or ""
    if not isinstance(label, str):
        raise HTTPException(400, "label: expected text")
    ctx = get_context(request)
    try:
        key = await run_in_threadpool(projects.create_key, ctx.engine, project_id, label)
    except projects.UnknownProject as err:
        raise HTTPException(404, str(err)) from None
    ctx.keys.forget()
    return json_response(_key(_base_url(request), key), 201)


@router.post("/keys/{key}/revoke")
async def revoke_key(key: str, request: Request) -> Response:
    """Stop accepting events sent with ``key``."""
    return await _set_active(request, key, False)


@router.post("/keys/{key}/enable")
async def enable_key(key: str, request: Request) -> Response:
    """Accept events sent with ``key`` again."""
    return await _set_active(request, key, True)


async def _set_active(request: Request, key: str, active: bool) -> Response:
    ctx = get_context(request)
    if not await run_in_threadpool(projects.set_key_active, ctx.engine, key, active):
        raise HTTPException(404, "no such key")
    ctx.keys.forget()
    return json_response({"key": key, "active": active})
