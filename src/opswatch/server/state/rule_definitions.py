"""Alert rules managed through the API and the dashboard, and the outbox of rule messages.

- ``rule_definitions``: one row per rule created through ``/api/0/rules`` (or the dashboard's form):
  the rule's keys exactly as a rules file spells them (JSON), validated by the same loader on the way in
  and again on every read (``rules.catalog``). ``version`` grows with every change, so a server sees that
  another one changed a rule without re-reading them all.
- ``rule_messages``: one row per notification message (a group of ``rule_notifications`` rows rendered
  together), a leased table of the notice outbox (``opswatch.server.outbox``): ``claimed_at`` while a
  server delivers it, ``notified_at`` once the delivery reached a final state.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import JSON, Engine, Float, Index, Integer, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .schema import ensure_schema

#: Version of this module's tables; raise it and add an upgrade step when they change.
SCHEMA_VERSION = 1


class RuleDefinition(Base):
    """A rule created through the API: its keys as a rules file spells them."""

    __tablename__ = "rule_definitions"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class RuleMessage(Base):
    """A rule notification message to deliver: the rows of the notification log it carries."""

    __tablename__ = "rule_messages"
    __table_args__ = (
        Index(
            "ix_rule_messages_waiting",
            "id",
            sqlite_where=text("notified_at IS NULL"),
            postgresql_where=text("notified_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(100))
    #: The notes it renders (``rules.messages.Note`` fields), so the message never depends on pruning.
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    claimed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    notified_at: Mapped[float | None] = mapped_column(Float, nullable=True)


DEFINITIONS = cast(Table, RuleDefinition.__table__)
MESSAGES = cast(Table, RuleMessage.__table__)


def install(engine: Engine) -> None:
    """Create or upgrade the tables."""
    Base.metadata.create_all(engine, tables=[DEFINITIONS, MESSAGES])
    ensure_schema(engine, "rule_definitions", SCHEMA_VERSION)
