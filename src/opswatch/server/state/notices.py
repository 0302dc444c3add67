"""Notice tables of the notification outbox (``opswatch.server.outbox``): one row per message to send.

``issue_notices``: a new or regressed issue, written in the same transaction that created or reopened the
issue, so a crash right after cannot lose the message. Leased claims: ``claimed_at`` while a server is
delivering it, ``notified_at`` once the delivery reached a final state. The partial index holds only the
rows still waiting, so it stays tiny however many notices were ever sent.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import JSON, Float, Index, Integer, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class IssueNotice(Base):
    """A message about an issue still to send (or sent, until pruned with the event retention)."""

    __tablename__ = "issue_notices"
    __table_args__ = (
        Index(
            "ix_issue_notices_waiting",
            "id",
            sqlite_where=text("notified_at IS NULL"),
            postgresql_where=text("notified_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issue_id: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[int] = mapped_column(Integer)
    #: ``new`` or ``regressed``.
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    #: What the message says (``issues.notify.notice_change``): title, culprit, level, the event's fields.
    change: Mapped[dict[str, Any]] = mapped_column(JSON)
    claimed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    notified_at: Mapped[float | None] = mapped_column(Float, nullable=True)


ISSUE_NOTICES = cast(Table, IssueNotice.__table__)
