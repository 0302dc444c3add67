"""Issue states and the moves between them, each a conditional UPDATE recorded in ``issue_activity``.

::

    unresolved ──resolve──► resolved ──(a new event)──► regressed ──resolve──► resolved ...
        │  ▲                    ▲  │                        │
        │  └──reopen────────────┘  └─(N days without events: auto-resolve)
        └──ignore──► ignored ──(until a time / until N more events / reopen)──► unresolved

A move names the status it leaves in its ``WHERE`` clause, so two writers racing on one issue cannot both
apply it (and cannot both record it). Moves that find the issue already where it was asked to go change
nothing and record nothing: resolving a resolved issue twice is one activity row.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection
from typing import Any, Final

from sqlalchemy import Connection, select, update

from ..state.issues import OPEN_STATUSES, Issue
from .activity import activity

#: Attempts at a move when a concurrent writer changes the status between our read and our write.
MAX_ATTEMPTS: Final = 5
#: Issues looked at per auto-resolve pass (the rest wait for the next pass).
AUTO_RESOLVE_BATCH: Final = 500


class IssueNotFound(LookupError):
    """No issue has that id."""


def _status(conn: Connection, issue_id: int) -> str:
    status = conn.execute(select(Issue.status).where(Issue.id == issue_id)).scalar_one_or_none()
    if status is None:
        raise IssueNotFound(f"no issue {issue_id}")
    return str(status)


def _move(
    conn: Connection,
    issue_id: int,
    actor: str,
    now: datetime.datetime,
    action: str,
    values: dict[str, Any],
    *,
    unless: Collection[str] = (),
    data: dict[str, Any] | None = None,
) -> bool:
    """Set ``values`` (with ``status_changed_at``) unless the issue's status is in ``unless``; record it.

    The UPDATE names the status it read, so a concurrent writer makes it read again (``MAX_ATTEMPTS``).
    """
    for _ in range(MAX_ATTEMPTS):
        current = _status(conn, issue_id)
        if current in unless:
            return False
        done = conn.execute(
            update(Issue)
            .where(Issue.id == issue_id, Issue.status == current)
            .values(status_changed_at=now, **values)
        ).rowcount
        if done:
            activity(conn, issue_id, now, actor, action, current, values["status"], data)
            return True
    return False


def resolve(conn: Connection, issue_id: int, actor: str, now: datetime.datetime) -> bool:
    """Mark an issue resolved; True when it changed. A later event regresses it."""
    values = {"status": "resolved", "resolved_at": now, "ignore_until": None, "ignore_until_count": None}
    return _move(conn, issue_id, actor, now, "resolved", values, unless={"resolved"})


def reopen(conn: Connection, issue_id: int, actor: str, now: datetime.datetime) -> bool:
    """Make a resolved or ignored issue unresolved again; True when it changed."""
    values = {"status": "unresolved", "resolved_at": None, "ignore_until": None, "ignore_until_count": None}
    return _move(conn, issue_id, actor, now, "reopened", values, unless=OPEN_STATUSES)


def ignore(
    conn: Connection,
    issue_id: int,
    actor: str,
    now: datetime.datetime,
    *,
    until: datetime.datetime | None = None,
    count: int | None = None,
) -> bool:
    """Ignore an issue until ``until``, until ``count`` more events, whichever comes first, or forever
    when neither is given. Ignoring an ignored issue replaces its conditions. Always records the change.
    """
    if until is not None and until <= now:
        raise ValueError("ignore until: the time is in the past")
    if count is not None and count < 1:
        raise ValueError("ignore count: expected at least 1 more event")
    values = {
        "status": "ignored",
        "ignore_until": until,
        "ignore_until_count": None if count is None else Issue.times_seen + count,
    }
    data = {"until": until.isoformat() if until else None, "count": count}
    return _move(conn, issue_id, actor, now, "ignored", values, data=data)


def auto_resolve(conn: Connection, now: datetime.datetime, days: int) -> list[int]:
    """Resolve open issues with no event for ``days`` days; returns their ids (one pass, bounded)."""
    cutoff = now - datetime.timedelta(days=days)
    candidates = conn.execute(
        select(Issue.id)
        .where(Issue.status.in_(OPEN_STATUSES), Issue.last_seen < cutoff)
        .order_by(Issue.last_seen)
        .limit(AUTO_RESOLVE_BATCH)
    ).scalars()
    resolved: list[int] = []
    for issue_id in list(candidates):
        for status in OPEN_STATUSES:
            done = conn.execute(
                update(Issue)
                .where(Issue.id == issue_id, Issue.status == status, Issue.last_seen < cutoff)
                .values(status="resolved", resolved_at=now, status_changed_at=now)
            ).rowcount
            if done:
                activity(
                    conn,
                    issue_id,
                    now,
                    "system:auto-resolve",
                    "auto_resolved",
                    status,
                    "resolved",
                    {"days": days},
                )
                resolved.append(int(issue_id))
                break
    return resolved


def expire_ignores(conn: Connection, now: datetime.datetime) -> list[int]:
    """Make issues whose ignore-until time has passed unresolved again; returns their ids."""
    candidates = conn.execute(
        select(Issue.id)
        .where(Issue.status == "ignored", Issue.ignore_until.is_not(None), Issue.ignore_until <= now)
        .limit(AUTO_RESOLVE_BATCH)
    ).scalars()
    expired: list[int] = []
    for issue_id in list(candidates):
        done = conn.execute(
            update(Issue)
            .where(Issue.id == issue_id, Issue.status == "ignored", Issue.ignore_until <= now)
            .values(status="unresolved", status_changed_at=now, ignore_until=None, ignore_until_count=None)
        ).rowcount
        if done:
            activity(conn, issue_id, now, "system:ignore-expired", "unignored", "ignored", "unresolved")
            expired.append(int(issue_id))
    return expired
