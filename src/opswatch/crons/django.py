"""Cron auth for Django: a view decorator that refuses calls without ``Authorization: Bearer <CRON_SECRET>``.

::

    from opswatch.crons.django import cron_auth_required

    @cron_auth_required
    def check_expired_subscriptions(request): ...

A refused call gets ``verify_cron_auth``'s status (401, or 500 when no secret is configured) and the JSON
body ``{"error": "<reason>"}``. Works on sync and async views.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.http import JsonResponse

from .auth import CronAuthError, verify_cron_auth

__all__ = ["cron_auth_required"]

F = TypeVar("F", bound=Callable[..., Any])


def _refusal(error: CronAuthError) -> Any:
    response = JsonResponse(dict(error.body), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def cron_auth_required(view: F) -> F:
    """Wrap a Django view (function or ``as_view()``) so it runs only for requests with the cron secret."""
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def check_async(request: Any, *args: Any, **kwargs: Any) -> Any:
            error = verify_cron_auth(request.headers.get("Authorization"))
            return _refusal(error) if error is not None else await view(request, *args, **kwargs)

        return cast(F, check_async)

    @functools.wraps(view)
    def check(request: Any, *args: Any, **kwargs: Any) -> Any:
        error = verify_cron_auth(request.headers.get("Authorization"))
        return _refusal(error) if error is not None else view(request, *args, **kwargs)

    return cast(F, check)
