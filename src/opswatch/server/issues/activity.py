"""The activity log: every state change of an issue, with who or what made it and when."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Connection, insert

from ..state.issues import IssueActivity


def activity(
    conn: Connection,
    issue_id: int,
    at: datetime.datetime,
    actor: str,
    kind: str,
    from_status: str | None,
    to_status: str,
    data: dict[str, Any] | None = None,
) -> None:
    """Record a state change of an issue: who or what (``actor``), when, from which status to which."""
    conn.execute(
        insert(IssueActivity).values(
            issue_id=issue_id,
            at=at,
            actor=actor[:100],
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            data=data,
        )
    )
