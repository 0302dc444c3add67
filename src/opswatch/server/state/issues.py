"""The issues tables: issues, the grouping hashes that lead to them, their hourly counts, the values
(release, environment, operation) seen on them, their activity log and the event -> issue mapping.

Times are stored as naive UTC (``UtcDateTime`` hands back aware UTC datetimes on every database), so the
same code runs on SQLite and PostgreSQL. Nothing here has a foreign key to ``projects``: an issue outlives
nothing it points to, and tests may create issues without a project row.
"""

from __future__ import annotations

import datetime
from typing import Any, cast

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from .base import Base

#: Version of this module's tables; raise it and add an upgrade step when they change.
SCHEMA_VERSION = 1

#: Issue statuses. ``regressed`` is an unresolved issue that had been resolved; filters for
#: ``unresolved`` include it.
STATUSES = ("unresolved", "regressed", "resolved", "ignored")
OPEN_STATUSES = ("unresolved", "regressed")


class UtcDateTime(TypeDecorator[datetime.datetime]):
    """A datetime stored as naive UTC and read back as aware UTC, on SQLite and PostgreSQL alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime.datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        moment: datetime.datetime = value
        return moment.astimezone(datetime.UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime.datetime | None:
        if value is None:
            return None
        moment: datetime.datetime = (
            datetime.datetime.fromisoformat(value) if isinstance(value, str) else value  # raw SQL on SQLite
        )
        return (
            moment.replace(tzinfo=datetime.UTC) if moment.tzinfo is None else moment.astimezone(datetime.UTC)
        )


class Issue(Base):
    """One issue: every error event whose grouping hash leads here."""

    __tablename__ = "issues"
    __table_args__ = (Index("ix_issues_project_status_last_seen", "project_id", "status", "last_seen"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="unresolved")
    #: Highest level seen (record level number: 40 error, 50 fatal).
    level: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    culprit: Mapped[str] = mapped_column(Text, default="")
    error_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    logger: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: The operation tag of the first event that had one (the seed assigns owners by operation).
    operation: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: The grouping algorithm the issue was created with, and its method and components.
    grouping_version: Mapped[int] = mapped_column(Integer)
    grouping: Mapped[dict[str, Any]] = mapped_column(JSON)
    primary_hash: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime.datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime.datetime] = mapped_column(UtcDateTime)
    times_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    first_event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    latest_event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The latest event itself as JSON text (already redacted), so an issue page needs no event-store
    #: query. Text rather than JSON: it is written with orjson on the ingest path, many times faster.
    latest_event: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_release: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_release: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status_changed_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    #: Ignored until this time (None: not by time).
    ignore_until: Mapped[datetime.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    #: Ignored until ``times_seen`` reaches this (None: not by count).
    ignore_until_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    times_regressed: Mapped[int] = mapped_column(Integer, default=0)


class IssueHash(Base):
    """A grouping hash and the issue it leads to (an issue may have hashes of several versions)."""

    __tablename__ = "issue_hashes"

    project_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    grouping_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime)


class IssueHourlyCount(Base):
    """Events of an issue per hour (by event time), for sparklines and trends."""

    __tablename__ = "issue_hourly_counts"

    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime.datetime] = mapped_column(UtcDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class IssueTagValue(Base):
    """A value seen on an issue's events for ``release``, ``environment`` or ``operation``."""

    __tablename__ = "issue_tag_values"

    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    times_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen: Mapped[datetime.datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime.datetime] = mapped_column(UtcDateTime)


class IssueActivity(Base):
    """A state change of an issue: who or what did it, when, from which status to which."""

    __tablename__ = "issue_activity"
    __table_args__ = (Index("ix_issue_activity_issue_at", "issue_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    at: Mapped[datetime.datetime] = mapped_column(UtcDateTime)
    #: ``admin`` (the API), ``cli``, a user name, or ``system:<reason>``.
    actor: Mapped[str] = mapped_column(String(100))
    #: created, resolved, auto_resolved, regressed, ignored, unignored, reopened.
    kind: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class IssueEvent(Base):
    """Which issue an event belongs to. Issues are decided after the durable append, so the event store's
    rows cannot carry the issue id; this table maps them (and makes counting idempotent by event id)."""

    __tablename__ = "issue_events"
    __table_args__ = (Index("ix_issue_events_issue_ts", "issue_id", "timestamp"),)

    project_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    issue_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    timestamp: Mapped[datetime.datetime] = mapped_column(UtcDateTime, index=True)


#: The tables above, for ``create_all(tables=...)``.
TABLES: list[Table] = [
    cast(Table, model.__table__)
    for model in (Issue, IssueHash, IssueHourlyCount, IssueTagValue, IssueActivity, IssueEvent)
]
