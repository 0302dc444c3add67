"""Who may do what: the admin token for the management API, ingest keys for ingest.

* ``require_admin``: a FastAPI dependency; the request must carry ``Authorization: Bearer
  <OPSWATCH_ADMIN_TOKEN>`` (compared in constant time), else 401; a client with too many failures is
  answered 429 (``opswatch.server.throttle``).
* ``get_context(request)``: the ``ServerContext`` of the app serving the request.
* ``native_key`` / ``sentry_key``: where each protocol puts its key; ``project_for_key`` checks that the
  key is active and belongs to the project named in the URL (401 otherwise).
"""

from __future__ import annotations

import secrets

from fastapi import HTTPException, Request

from .context import ServerContext
from .ingest.body import IngestError
from .throttle import client_address, throttle_for


def get_context(request: Request) -> ServerContext:
    """The server context of the app that serves ``request``."""
    ctx: ServerContext = request.app.state.ctx
    return ctx


def require_admin(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the admin token as a Bearer token."""
    ctx = get_context(request)
    throttle, client = throttle_for(ctx.extras), client_address(request)
    wait = throttle.retry_after(client)
    if wait is not None:  # too many failures from this client: refused before the token is compared
        raise HTTPException(429, "too many failed attempts; retry later", headers={"Retry-After": str(wait)})
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        token.strip().encode(), ctx.settings.admin_token.encode()
    ):
        throttle.failed(client)
        raise HTTPException(
            status_code=401,
            detail="admin token required (Authorization: Bearer $OPSWATCH_ADMIN_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def native_key(request: Request) -> str | None:
    """The ingest key of a native request: ``Authorization: Bearer <key>`` or ``X-Opswatch-Key``."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = request.headers.get("x-opswatch-key")
    return key.strip() if key else None


def sentry_key(request: Request) -> str | None:
    """The key of a Sentry request: ``X-Sentry-Auth``, ``Authorization: Sentry ...`` or ``?sentry_key=``."""
    for header in (request.headers.get("x-sentry-auth"), request.headers.get("authorization")):
        if header and header[:7].lower() == "sentry ":
            key = parse_sentry_auth(header).get("sentry_key")
            if key:
                return key
    key = request.query_params.get("sentry_key")
    return key or None


def parse_sentry_auth(header: str) -> dict[str, str]:
    """``Sentry sentry_key=abc, sentry_version=7`` as ``{"sentry_key": "abc", "sentry_version": "7"}``."""
    _, _, rest = header.partition(" ")
    out: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name.strip()] = value.strip().strip('"')
    return out


def project_for_key(ctx: ServerContext, project: str, key: str | None) -> int:
    """The project id named by ``project`` when ``key`` is one of its active keys; else 401/404.

    Raises ``IngestError`` so that ingest handlers answer in their own shape.
    """
    if not key:
        raise IngestError(401, "unauthorized", "no ingest key: send the DSN key as a Bearer token")
    if not (project.isascii() and project.isdigit()) or len(project) > 18:  # int() takes "１", "+1", "1_0"
        raise IngestError(404, "not_found", f"no project {project[:40]!r}")
    project_id = int(project)
    owner = ctx.keys.project_for(key)
    if owner is None or owner != project_id:
        raise IngestError(401, "unauthorized", f"the key is not a valid ingest key of project {project_id}")
    return project_id
