"""The cast of the rule tests: a checkout service and a search service logging requests at known times.

``request(at, ...)`` is one record in the shape the server hands the store; ``T0`` is a fixed start
(2026-11-29 12:00 UTC, a Sunday) from which tests count seconds.
"""

from __future__ import annotations

import itertools
from typing import Any

from opswatch.record import format_timestamp

#: 2026-11-29T12:00:00Z (a Sunday; 06:00 in America/Chicago).
T0 = 1_795_953_600.0

_ids = itertools.count(1)


def request(
    at: float,
    *,
    service: str = "checkout",
    level: str = "info",
    duration_ms: float | None = 100.0,
    operation: str = "api.request",
    environment: str = "production",
    **extra: Any,
) -> dict[str, Any]:
    """One request log record at ``at`` (epoch seconds)."""
    record: dict[str, Any] = {
        "timestamp": format_timestamp(at),
        "level": level,
        "logger": service,
        "message": "request" if level == "info" else "request failed",
        "event_id": f"{next(_ids):032x}",
        "service": service,
        "environment": environment,
        "project_id": 1,
        "kind": "error" if level in ("error", "fatal") else "log",
        "received_at": format_timestamp(at),
        "operation": operation,
        **extra,
    }
    if duration_ms is not None:
        record["duration_ms"] = duration_ms
    return record
