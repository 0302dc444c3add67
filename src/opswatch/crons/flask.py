"""Cron auth for Flask: a view decorator that refuses calls without ``Authorization: Bearer <CRON_SECRET>``.

::

    from opswatch.crons.flask import cron_auth_required

    @app.get("/api/cron/check-expired-subscriptions")
    @cron_auth_required
    def check_expired_subscriptions(): ...

A refused call gets ``verify_cron_auth``'s status (401, or 500 when no secret is configured) and the JSON
body ``{"error": "<reason>"}``. Works on sync and async views.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import jsonify, request

from .auth import CronAuthError, verify_cron_auth

__all__ = ["cron_auth_required"]

F = TypeVar("F", bound=Callable[..., Any])


def _refusal(error: CronAuthError) -> Any:
    return jsonify(dict(error.body)), error.status, dict(error.headers)


def cron_auth_required(view: F) -> F:
    """Wrap a Flask view so it runs only for requests that carry the cron secret."""
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def check_async(*args: Any, **kwargs: Any) -> Any:
            error = verify_cron_auth(request.headers.get("Authorization"))
            return _refusal(error) if error is not None else await view(*args, **kwargs)

        return cast(F, check_async)

    @functools.wraps(view)
    def check(*args: Any, **kwargs: Any) -> Any:
        error = verify_cron_auth(request.headers.get("Authorization"))
        return _refusal(error) if error is not None else view(*args, **kwargs)

    return cast(F, check)
