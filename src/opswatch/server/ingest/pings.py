"""Cron pings from shell scripts, and Sentry's HTTP check-in route, as ``check_in`` records.

Healthchecks-style pings: ``/ping/<key>/<slug>`` means success, ``/start`` a run began, ``/fail`` it
failed, ``/<exit code>`` (0-255) success for 0 and failure otherwise; ``?rid=<uuid>`` ties a start to its
end. A POST body (the tail of a job's log) is kept as ``output``, cut at ``MAX_PING_BODY_BYTES``. Sentry's
``/api/<project>/cron/<slug>/<key>/?status=in_progress|ok|error`` takes ``check_in_id``, ``duration``
(seconds), ``environment`` and ``release`` as query parameters.

Both become records with ``kind="check_in"``, ``monitor_slug``, ``status`` (``in_progress``, ``ok`` or
``error``, Sentry's words), ``check_in_id`` when given, ``exit_code`` for exit-code pings and ``source``
(``ping`` or ``sentry``). This module gives them no meaning: the cron monitors do, through ``ctx.hooks``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ...record import new_event_id
from .. import limits
from .body import IngestError

_SLUG = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{limits.MAX_SLUG_LENGTH - 1}}}")
_RUN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_ACTIONS = {"": "ok", "start": "in_progress", "fail": "error"}
_STATUSES = frozenset({"in_progress", "ok", "error"})


def check_slug(slug: str) -> str:
    """``slug`` when it is a valid monitor slug; else ``IngestError`` 400."""
    if not _SLUG.fullmatch(slug):
        raise IngestError(
            400,
            "bad_slug",
            f"a monitor slug is 1 to {limits.MAX_SLUG_LENGTH} letters, digits, '-', '_' or '.'",
        )
    return slug


def ping_record(
    slug: str, action: str, run_id: str | None, body: bytes, user_agent: str | None = None
) -> dict[str, Any]:
    """The record for ``/ping/<key>/<slug>[/<action>]``; ``IngestError`` 400/404 for a bad one."""
    check_slug(slug)
    exit_code: int | None = None
    if action in _ACTIONS:
        status = _ACTIONS[action]
    elif action.isascii() and action.isdigit() and len(action) <= 3:
        exit_code = int(action)
        if exit_code > 255:
            raise IngestError(400, "bad_exit_code", "an exit code is 0 to 255")
        status = "ok" if exit_code == 0 else "error"
    else:
        raise IngestError(404, "not_found", f"unknown ping action {action[:40]!r} (start, fail or 0-255)")
    record: dict[str, Any] = {
        "event_id": new_event_id(),
        "kind": "check_in",
        "source": "ping",
        "monitor_slug": slug,
        "status": status,
        "level": "error" if status == "error" else "info",
        "message": _message(slug, status, exit_code),
    }
    if exit_code is not None:
        record["exit_code"] = exit_code
    if run_id is not None:
        record["check_in_id"] = _run_id(run_id)
    if body:
        text = body[: limits.MAX_PING_BODY_BYTES].decode("utf-8", errors="replace")
        record["output"] = text
        if len(body) > limits.MAX_PING_BODY_BYTES:
            record["output_truncated"] = True
    if user_agent:
        record["user_agent"] = user_agent[:200]
    return record


def sentry_check_in_record(slug: str, params: Mapping[str, str]) -> dict[str, Any]:
    """The record for Sentry's ``/api/<project>/cron/<slug>/<key>/?status=...``; ``IngestError`` 400."""
    check_slug(slug)
    status = params.get("status", "")
    if status not in _STATUSES:
        raise IngestError(400, "bad_status", "status must be in_progress, ok or error")
    record: dict[str, Any] = {
        "event_id": new_event_id(),
        "kind": "check_in",
        "source": "sentry",
        "monitor_slug": slug,
        "status": status,
        "level": "error" if status == "error" else "info",
        "message": _message(slug, status, None),
    }
    if params.get("check_in_id"):
        record["check_in_id"] = _run_id(params["check_in_id"])
    if params.get("duration"):
        try:
            seconds = float(params["duration"])
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds >= 0):
            raise IngestError(400, "bad_duration", "duration must be a non-negative number of seconds")
        record["duration_ms"] = round(seconds * 1000, 3)
    for key in ("environment", "release"):
        if params.get(key):
            record[key] = params[key][:200]
    return record


def _run_id(value: str) -> str:
    if not _RUN_ID.fullmatch(value):
        raise IngestError(400, "bad_run_id", "a run id is 1 to 64 letters, digits or -_.:")
    return value


def _message(slug: str, status: str, exit_code: int | None) -> str:
    if exit_code is not None:
        return f"check-in {slug}: {status} (exit code {exit_code})"
    return f"check-in {slug}: {status}"
