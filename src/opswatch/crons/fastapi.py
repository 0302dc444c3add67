"""Cron auth for FastAPI: a dependency that refuses calls without ``Authorization: Bearer <CRON_SECRET>``.

::

    from fastapi import Depends
    from opswatch.crons.fastapi import require_cron_auth

    @app.get("/api/cron/check-expired-subscriptions", dependencies=[Depends(require_cron_auth)])
    def check_expired_subscriptions(): ...

A refused call gets ``verify_cron_auth``'s status (401, or 500 when no secret is configured) and the
body ``{"detail": "<reason>"}``.
"""

from __future__ import annotations

from fastapi import HTTPException, Request

from .auth import verify_cron_auth

__all__ = ["require_cron_auth"]


def require_cron_auth(request: Request) -> None:
    """FastAPI dependency: raise ``HTTPException`` unless the request carries the cron secret."""
    error = verify_cron_auth(request.headers.get("authorization"))
    if error is not None:
        headers = dict(error.headers) or None
        raise HTTPException(status_code=error.status, detail=error.reason, headers=headers)
