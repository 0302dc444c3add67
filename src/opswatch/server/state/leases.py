"""The ``leases`` table: one row per lease that replicas sharing a state store compete for.

``opswatch.server.leader`` uses the row named ``singletons``. ``holder`` is the replica holding it (empty
when it was released), and ``version`` is bumped by every write (take-over, renewal, release), so a
replica can tell "nobody renewed this" from "it was renewed" by comparing versions alone. The times are
informational (shown by ``/healthz``): no decision compares one machine's clock with another's.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Engine, Float, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .schema import ensure_schema

#: Version of this module's table; raise it and add an upgrade step when it changes.
SCHEMA_VERSION = 1


class LeaseRow(Base):
    """A lease: who holds it and how often it was written."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The holder's id (host, process, random part); "" when released.
    holder: Mapped[str] = mapped_column(String(200), default="")
    version: Mapped[int] = mapped_column(Integer, default=0)
    #: Wall-clock seconds of the current holder's take-over and latest renewal (for people).
    acquired_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    renewed_at: Mapped[float | None] = mapped_column(Float, nullable=True)


LEASES = cast(Table, LeaseRow.__table__)


def install(engine: Engine) -> None:
    """Create or upgrade the ``leases`` table."""
    Base.metadata.create_all(engine, tables=[LEASES])
    ensure_schema(engine, "leases", SCHEMA_VERSION)
