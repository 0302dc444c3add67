"""Cron monitor tables: monitors, their run history, and their state changes (an outbox).

Times are seconds since the epoch (``Float``), not ``DateTime``: the clock compares and writes them for
every due monitor on every tick, and floats cost nothing to convert. The API shows them as RFC 3339.

- ``monitors``: one row per (project, slug): the configuration the users sent (only the keys they sent,
  so an upsert merges), the engine's state, and ``version``, which every write checks and bumps
  (``UPDATE ... WHERE id = :id AND version = :version``) so two workers never both apply a change.
- ``monitor_runs``: the run history (start, end, duration, status, run id); a missed slot is a run too.
- ``monitor_changes``: every state change (missed, timeout, failing, recovered, paused ...), written in
  the same transaction as the state it describes. It is the outbox: a worker copies rows to the event
  store (``stored``) and sends the notifications they call for (``notify``), claiming each row with a
  conditional UPDATE on ``notified_at`` so a notification goes out once.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .schema import ensure_schema

#: Version of this module's tables; raise it and add an upgrade step when they change.
SCHEMA_VERSION = 1


class Monitor(Base):
    """A cron monitor: configuration, engine state, and the write version."""

    __tablename__ = "monitors"
    __table_args__ = (UniqueConstraint("project_id", "slug", name="uq_monitors_project_slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(Integer, index=True)
    slug: Mapped[str] = mapped_column(String(200))
    #: The settings users sent, normalized (seconds); defaults are applied when rules are built.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="new")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    last_checkin_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_ok_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_result: Mapped[str | None] = mapped_column(String(16), nullable=True)
    next_expected: Mapped[float | None] = mapped_column(Float, nullable=True)
    prev_expected: Mapped[float | None] = mapped_column(Float, nullable=True)
    consecutive_bad: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_ok: Mapped[int] = mapped_column(Integer, default=0)
    streak_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    failing_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    failing_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    episode_missed: Mapped[int] = mapped_column(Integer, default=0)
    episode_errors: Mapped[int] = mapped_column(Integer, default=0)
    episode_timeouts: Mapped[int] = mapped_column(Integer, default=0)
    #: A "failing" notification went out for the current episode, so its recovery is announced too.
    episode_announced: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class MonitorRun(Base):
    """One run of a monitored job (or one missed slot)."""

    __tablename__ = "monitor_runs"
    __table_args__ = (
        UniqueConstraint("monitor_id", "run_key", name="uq_monitor_runs_key"),
        Index("ix_monitor_runs_monitor_started", "monitor_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    run_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    missed_slots: Mapped[int | None] = mapped_column(Integer, nullable=True)


class MonitorChange(Base):
    """A state change of a monitor; also the outbox for the event store and notifications."""

    __tablename__ = "monitor_changes"
    # The two outbox indexes are partial: they hold only the rows still waiting, so they stay tiny.
    __table_args__ = (
        Index(
            "ix_monitor_changes_unstored",
            "id",
            sqlite_where=text("stored = 0"),
            postgresql_where=text("stored = false"),
        ),
        Index(
            "ix_monitor_changes_unnotified",
            "id",
            sqlite_where=text("notify IS NOT NULL AND notified_at IS NULL"),
            postgresql_where=text("notify IS NOT NULL AND notified_at IS NULL"),
        ),
        Index("ix_monitor_changes_monitor", "monitor_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    monitor_id: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[int] = mapped_column(Integer)
    slug: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stored: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``failing`` or ``recovered`` when this change calls for a notification.
    notify: Mapped[str | None] = mapped_column(String(16), nullable=True)
    notified_at: Mapped[float | None] = mapped_column(Float, nullable=True)


#: The tables as Core ``Table`` objects (the clock writes them in bulk with Core statements).
MONITORS = cast(Table, Monitor.__table__)
RUNS = cast(Table, MonitorRun.__table__)
CHANGES = cast(Table, MonitorChange.__table__)
TABLES = (MONITORS, RUNS, CHANGES)


def install(engine: Engine) -> None:
    """Create or upgrade the monitor tables."""
    Base.metadata.create_all(engine, tables=list(TABLES))
    ensure_schema(engine, "monitors", SCHEMA_VERSION)
