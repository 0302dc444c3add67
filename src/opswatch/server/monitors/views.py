"""What the API and CLI show of a monitor: its summary, its details, its runs, and its recent health.

Health over the recent runs (the last ``STATS_WINDOW`` finished runs and missed slots): the success rate
(``ok`` over everything that finished or was missed, a catch-up miss counting each slot it covers) and
the average duration of the runs that reported one. Times are RFC 3339 UTC strings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Engine, bindparam, text

from ...record import format_timestamp
from . import config as monitor_config
from .engine import STATUSES
from .persist import Entry

__all__ = ["STATUSES", "Health", "change_view", "detail", "health", "iso", "run_view", "summary"]

#: How many recent runs the success rate and the average duration look at.
STATS_WINDOW: Final = 50

_STATS_SQL = text(
    """
    SELECT monitor_id,
           SUM(CASE WHEN status = 'missed' THEN COALESCE(missed_slots, 1) ELSE 1 END) AS total,
           SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS good,
           AVG(duration) AS mean_duration
    FROM (
        SELECT monitor_id, status, missed_slots,
               CASE WHEN status IN ('ok', 'error') THEN duration END AS duration,
               ROW_NUMBER() OVER (PARTITION BY monitor_id ORDER BY started_at DESC, id DESC) AS position
        FROM monitor_runs
        WHERE monitor_id IN :ids AND status IN ('ok', 'error', 'timeout', 'missed')
    ) AS recent
    WHERE position <= :window
    GROUP BY monitor_id
    """
).bindparams(bindparam("ids", expanding=True))


@dataclasses.dataclass(frozen=True, slots=True)
class Health:
    """Success rate (0..1, None without runs) and mean duration in seconds over the recent runs."""

    runs: int = 0
    success_rate: float | None = None
    avg_duration: float | None = None


def iso(epoch: float | None) -> str | None:
    """RFC 3339 UTC with milliseconds, or None."""
    return None if epoch is None else format_timestamp(epoch)


def health(engine: Engine, entries: Sequence[Entry], window: int = STATS_WINDOW) -> dict[int, Health]:
    """Recent health of each entry, by monitor id (entries without runs are absent)."""
    if not entries:
        return {}
    result: dict[int, Health] = {}
    with engine.connect() as conn:
        ids = [entry.id for entry in entries]
        for start in range(0, len(ids), 500):
            rows = conn.execute(_STATS_SQL, {"ids": ids[start : start + 500], "window": window})
            for row in rows:
                total = int(row.total or 0)
                rate = (int(row.good or 0) / total) if total else None
                mean = float(row.mean_duration) if row.mean_duration is not None else None
                result[int(row.monitor_id)] = Health(total, rate, mean)
    return result


def summary(entry: Entry, stats: Health | None = None) -> dict[str, Any]:
    """One line of a monitor list."""
    state = entry.state
    stats = stats or Health()
    return {
        "slug": entry.slug,
        "project_id": entry.project_id,
        "status": state.status,
        "schedule": entry.config.get("schedule"),
        "timezone": entry.config.get("timezone", "UTC"),
        "paused": state.paused,
        "last_checkin_at": iso(state.last_checkin_at),
        "last_ok_at": iso(state.last_ok_at),
        "next_expected_at": iso(state.next_expected),
        "failing_since": iso(state.failing_since),
        "failing_reason": state.failing_reason,
        "in_progress": len(state.open_runs),
        "success_rate": None if stats.success_rate is None else round(stats.success_rate, 4),
        "avg_duration_ms": None if stats.avg_duration is None else round(stats.avg_duration * 1000, 1),
        "recent_runs": stats.runs,
    }


def detail(entry: Entry, stats: Health | None, runs: Sequence[Any], changes: Sequence[Any]) -> dict[str, Any]:
    """A monitor whole: summary, settings (as sent and with defaults), counters, runs and changes."""
    state = entry.state
    view = summary(entry, stats)
    view.update(
        config=dict(entry.config),
        settings=monitor_config.effective(entry.config),
        consecutive_bad=state.consecutive_bad,
        consecutive_ok=state.consecutive_ok,
        last_result=state.last_result,
        created_at=iso(entry.created_at),
        updated_at=iso(entry.updated_at),
        runs=[run_view(row) for row in runs],
        changes=[change_view(row) for row in changes],
    )
    return view


def run_view(row: Any) -> dict[str, Any]:
    """One run of the history."""
    key = str(row.run_key)
    view: dict[str, Any] = {
        "run_id": None if key.startswith(("auto:", "missed:")) else key,
        "status": row.status,
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "duration_ms": None if row.duration is None else round(float(row.duration) * 1000, 1),
    }
    if row.missed_slots is not None:
        view["missed_slots"] = row.missed_slots
    return view


def change_view(row: Any) -> dict[str, Any]:
    """One state change."""
    details = {
        key: iso(value) if key.endswith(("_at", "since")) and isinstance(value, (int, float)) else value
        for key, value in dict(row.details or {}).items()
    }
    return {
        "change": row.kind,
        "at": iso(row.at),
        "status": row.status,
        "details": details,
        "notified": row.notified_at is not None if row.notify else None,
    }
