"""``verify_cron_auth``: the check a cron endpoint makes before running a job (the seed's ``verifyCronAuth``).

A scheduler (Vercel Cron, GitHub Actions, a crontab with ``curl``) calls the endpoint with
``Authorization: Bearer <CRON_SECRET>``. The comparison takes the same time whatever the header holds.

When ``CRON_SECRET`` is not set:

- in ``development``, ``dev``, ``local`` and ``test`` environments every call is let through (and a
  warning is logged), so a laptop needs no secret;
- anywhere else (production, staging, ...) every call is refused with status **500**: a missing secret is
  a broken deployment, not an open door. The answer is a value, not an exception, so the endpoint
  answers instead of crashing, and an ``error`` record (``cron.auth.misconfigured``) reaches the alerts.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Mapping
from typing import Final

from ..log import get_logger

__all__ = ["OPEN_ENVIRONMENTS", "CronAuthError", "verify_cron_auth"]

#: Environments in which a missing ``CRON_SECRET`` lets every call through.
OPEN_ENVIRONMENTS: Final = frozenset({"development", "dev", "local", "test", "testing"})

_LOG = get_logger("cron.auth")


@dataclasses.dataclass(frozen=True)
class CronAuthError:
    """Why a cron call was refused, ready to become an HTTP answer: ``status``, JSON ``body``, ``headers``."""

    status: int
    body: Mapping[str, str]
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def reason(self) -> str:
        """The one-line reason (``body["error"]``)."""
        return self.body.get("error", "")


_UNAUTHORIZED = CronAuthError(
    401,
    {"error": "Unauthorized: expected 'Authorization: Bearer <CRON_SECRET>'"},
    {"WWW-Authenticate": "Bearer"},
)
_MISCONFIGURED = CronAuthError(500, {"error": "CRON_SECRET is not configured on the server"})


def verify_cron_auth(
    authorization_header: str | None,
    *,
    secret: str | None = None,
    environment: str | None = None,
) -> CronAuthError | None:
    """Return ``None`` when ``authorization_header`` is ``Bearer <CRON_SECRET>``, else a ``CronAuthError``.

    ``secret`` and ``environment`` default to the ``cron_secret`` and ``environment`` settings
    (``CRON_SECRET``, ``OPSWATCH_ENVIRONMENT``). Status 401 for a missing or wrong header; 500 when no
    secret is configured outside development (see the module docs). Never raises.
    """
    try:
        if secret is None or environment is None:
            from .._setup import settings

            current = settings()
            secret = current.cron_secret if secret is None else secret
            environment = current.environment if environment is None else environment
        if not secret:
            if environment.lower() in OPEN_ENVIRONMENTS:
                _LOG.warn(
                    "CRON_SECRET is not set: cron endpoints are open in this environment",
                    operation="cron.auth.open",
                    environment=environment,
                )
                return None
            _LOG.error(
                "CRON_SECRET is not set: refusing cron calls",
                operation="cron.auth.misconfigured",
                environment=environment,
            )
            return _MISCONFIGURED
        given = (authorization_header or "").strip().encode("utf-8", "surrogateescape")
        scheme, _, token = given.partition(b" ")
        # The scheme is case-insensitive (RFC 7235) and not secret; the token is compared in constant time.
        ok = hmac.compare_digest(token.strip(), secret.encode("utf-8")) and scheme.lower() == b"bearer"
        if ok:
            return None
        _LOG.warn("Unauthorized cron call", operation="cron.auth.rejected", header_present=bool(given))
        return _UNAUTHORIZED
    except Exception:  # a broken setting (bad environment variable ...) must not open the door
        return _MISCONFIGURED
