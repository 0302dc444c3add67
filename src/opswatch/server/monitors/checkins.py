"""Reading a ``check_in`` record from the event store's shape into what the monitor engine takes.

Every ingest path produces the same record (``kind="check_in"``): the native SDK, Sentry ``check_in``
items and the Sentry cron route, and pings. The fields read, with the spellings accepted:

- slug: ``monitor_slug`` (also ``monitorSlug``, ``slug``, ``monitor``)
- status: ``status``: ``in_progress``, ``ok``, ``error`` (also ``start``/``started``/``running``,
  ``success``/``complete``/``completed``, ``fail``/``failed``/``failure``), or ``exit_code`` (0 is ``ok``)
- run id: ``check_in_id`` (also ``checkInId``, ``run_id``, ``rid``)
- duration: ``duration_ms`` (also ``durationMs``) in milliseconds, or ``duration`` in seconds (Sentry's)
- configuration: ``monitor_config`` (also ``monitorConfig``), Sentry's shape or ours (see ``config``)

``missed`` and ``timeout`` are the server's to decide, so a client sending them is refused.

A check-in is dated by the server's clock when it is applied (right after it is stored), not by the
record's ``timestamp``: a client whose clock is wrong cannot move a run in time, and the engine sees
time only move forward. The client's ``duration`` is kept as the run's duration when it sent one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Final

from .engine import CheckIn, CheckInStatus

_STATUSES: Final[dict[str, CheckInStatus]] = {
    "in_progress": "in_progress",
    "in-progress": "in_progress",
    "start": "in_progress",
    "started": "in_progress",
    "running": "in_progress",
    "ok": "ok",
    "success": "ok",
    "complete": "ok",
    "completed": "ok",
    "error": "error",
    "fail": "error",
    "failed": "error",
    "failure": "error",
}
_SLUG_KEYS: Final = ("monitor_slug", "monitorSlug", "slug", "monitor")
_RUN_KEYS: Final = ("check_in_id", "checkInId", "run_id", "rid")
_CONFIG_KEYS: Final = ("monitor_config", "monitorConfig")


class BadCheckIn(ValueError):
    """The record cannot be read as a check-in; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Incoming:
    """A check-in for a monitor named by project and slug, with the configuration it carried, if any."""

    project_id: int
    slug: str
    checkin: CheckIn
    config: Mapping[str, Any] | None
    event_id: str | None = None
    #: The trace the check-in was sent from (Sentry SDKs send the run's error event in the same trace).
    trace_id: str | None = None
    #: Who sent it: ``sentry`` for Sentry SDKs (whose error event follows the check-in), else None.
    source: str | None = None


def from_record(record: Mapping[str, Any], default_project: int = 1) -> Incoming:
    """Read one ``check_in`` record; raise ``BadCheckIn`` with a reason."""
    slug = _first(record, _SLUG_KEYS)
    if not isinstance(slug, str) or not slug:
        raise BadCheckIn("a check-in needs a monitor_slug")
    status = _status(record)
    run_id = _first(record, _RUN_KEYS)
    if run_id is not None and not isinstance(run_id, (str, int)):
        raise BadCheckIn(f"check_in_id must be text, got {type(run_id).__name__}")
    config = _first(record, _CONFIG_KEYS)
    if config is not None and not isinstance(config, Mapping):
        raise BadCheckIn("monitor_config must be an object")
    project = record.get("project_id", default_project)
    if not isinstance(project, int) or isinstance(project, bool):
        raise BadCheckIn("project_id must be a number")
    return Incoming(
        project_id=project,
        slug=slug,
        checkin=CheckIn(status, None if run_id in (None, "") else str(run_id), _duration(record)),
        config=config,
        event_id=_text(record.get("event_id")),
        trace_id=_text(record.get("trace_id")),
        source=_text(record.get("source")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first(record: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = record.get(key)
        if value is not None:
            return value
    return None


def _status(record: Mapping[str, Any]) -> CheckInStatus:
    raw = record.get("status")
    if raw is None:
        raw = record.get("check_in_status")
    if raw is None and record.get("exit_code") is not None:
        code = record["exit_code"]
        if isinstance(code, bool) or not isinstance(code, int):
            raise BadCheckIn(f"exit_code must be a whole number, got {code!r}")
        return "ok" if code == 0 else "error"
    if isinstance(raw, str) and raw.lower() in _STATUSES:
        return _STATUSES[raw.lower()]
    if raw in ("missed", "timeout"):
        raise BadCheckIn(f"status {raw!r} is decided by the server; send in_progress, ok or error")
    raise BadCheckIn(f"check-in status must be in_progress, ok or error, got {raw!r}")


def _duration(record: Mapping[str, Any]) -> float | None:
    for key, factor in (("duration_ms", 0.001), ("durationMs", 0.001), ("duration", 1.0)):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return max(0.0, float(value) * factor)
    return None
