"""Alert rule tables: instance state, rule status, the notification log, group timers and silences.

Times are seconds since the epoch (``Float``), as in the monitor tables.

- ``rule_instances``: one row per (rule, label set): the state machine's state (``rules/machine.py``),
  with ``version`` checked and bumped on every write, so two servers never both apply a step.
- ``rule_status``: one row per rule: the last evaluation and the error episode in progress.
- ``rule_notifications``: the notification log and outbox. Every message the state machine calls for
  is a row, written in the same transaction as the state it describes; the dispatcher claims a row with
  ``UPDATE ... SET status = 'sent', notified_at = :now WHERE id = :id AND status = 'pending'`` and in
  the same transaction writes the message that carries it (``rule_messages``, a leased outbox table in
  ``rule_definitions.py``), so each goes out once across restarts and replicas.
  Silenced rows stay, with the silence that muted them. It is also the alert history the API shows.
- ``rule_groups``: per notification group, when it was last sent (``group_interval``).
- ``silences``: matchers on the rule and labels, with start, end, author and comment.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import JSON, Boolean, Engine, Float, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .schema import ensure_schema

#: Version of this module's tables; raise it and add an upgrade step when they change.
SCHEMA_VERSION = 1


class RuleInstance(Base):
    """The state of one label set of one rule."""

    __tablename__ = "rule_instances"
    __table_args__ = (UniqueConstraint("rule", "key_hash", name="uq_rule_instances_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="inactive")
    severity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    health: Mapped[str] = mapped_column(String(16), default="ok")
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    events: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pending_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    firing_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_breach_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    clear_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    resolved_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_eval_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    transitions: Mapped[list[float]] = mapped_column(JSON, default=list)
    flapping: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=0)


class RuleStatusRow(Base):
    """Rule-wide state: last evaluation and the error episode in progress."""

    __tablename__ = "rule_status"

    rule: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_eval_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    expected: Mapped[bool] = mapped_column(Boolean, default=True)
    waiting: Mapped[list[str]] = mapped_column(JSON, default=list)


class RuleNotification(Base):
    """One message of the notification log (and outbox)."""

    __tablename__ = "rule_notifications"
    __table_args__ = (
        Index("ix_rule_notifications_status", "status", "id"),
        Index("ix_rule_notifications_instance", "rule", "key_hash", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(40))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kind: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    at: Mapped[float] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    group_key: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[float] = mapped_column(Float)
    #: pending | sent | silenced | inhibited | unannounced (a resolve never announced) | dropped |
    #: released (a notice rule's muted message handed back to its outbox, ``rules/outbox_release.py``)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    notified_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    silence_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RuleGroup(Base):
    """A notification group: when it was last sent."""

    __tablename__ = "rule_groups"

    group_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Silence(Base):
    """Mutes notifications whose rule and labels match every matcher, between start and end."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    matchers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    starts_at: Mapped[float] = mapped_column(Float)
    ends_at: Mapped[float] = mapped_column(Float)
    author: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)


INSTANCES = cast(Table, RuleInstance.__table__)
STATUS = cast(Table, RuleStatusRow.__table__)
NOTIFICATIONS = cast(Table, RuleNotification.__table__)
GROUPS = cast(Table, RuleGroup.__table__)
SILENCES = cast(Table, Silence.__table__)
TABLES = (INSTANCES, STATUS, NOTIFICATIONS, GROUPS, SILENCES)


def install(engine: Engine) -> None:
    """Create or upgrade the rule tables."""
    Base.metadata.create_all(engine, tables=list(TABLES))
    ensure_schema(engine, "rules", SCHEMA_VERSION)
