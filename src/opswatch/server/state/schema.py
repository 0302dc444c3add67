"""Schema versions of the state store, recorded per component and upgraded on start.

Each subsystem that owns tables calls ``ensure_schema(engine, component, version, upgrades)`` from its
install step. A fresh database gets the tables from ``Base.metadata.create_all`` and is stamped with the
current version; an older one runs ``upgrades[n]`` for every version ``n`` it lacks, in order, each in
its own transaction, and is stamped after each step (so an interrupted upgrade resumes where it stopped).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping

from sqlalchemy import Connection, DateTime, Engine, Integer, String, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

Upgrade = Callable[[Connection], None]


class SchemaVersion(Base):
    """One row per component: the schema version its tables are at."""

    __tablename__ = "schema_versions"

    component: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    upgraded_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class SchemaTooNew(RuntimeError):
    """The database was written by a newer opswatch than this one."""


def current_version(engine: Engine, component: str) -> int | None:
    """The recorded version of ``component``, or None when it was never stamped."""
    SchemaVersion.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return conn.execute(
            select(SchemaVersion.version).where(SchemaVersion.component == component)
        ).scalar_one_or_none()


def ensure_schema(
    engine: Engine, component: str, version: int, upgrades: Mapping[int, Upgrade] | None = None
) -> int:
    """Bring ``component`` to ``version``; return the version it was at before (0 when new).

    ``upgrades[n]`` moves the schema from ``n - 1`` to ``n``. Raises ``SchemaTooNew`` when the database
    is ahead of this code, and ``RuntimeError`` when a needed upgrade step is missing.
    """
    found = current_version(engine, component)
    if found is None:
        _stamp(engine, component, version)
        return 0
    if found > version:
        raise SchemaTooNew(
            f"the state store's {component} schema is version {found}; this opswatch knows {version}"
        )
    for step in range(found + 1, version + 1):
        upgrade = (upgrades or {}).get(step)
        if upgrade is None:
            raise RuntimeError(f"no upgrade of the {component} schema to version {step}")
        with engine.begin() as conn:
            upgrade(conn)
        _stamp(engine, component, step)
    return found


def _stamp(engine: Engine, component: str, version: int) -> None:
    now = datetime.datetime.now(datetime.UTC)
    with engine.begin() as conn:
        row = conn.execute(
            select(SchemaVersion.component).where(SchemaVersion.component == component)
        ).first()
        if row is None:
            conn.execute(insert(SchemaVersion).values(component=component, version=version, upgraded_at=now))
        else:
            conn.execute(
                update(SchemaVersion)
                .where(SchemaVersion.component == component)
                .values(version=version, upgraded_at=now)
            )
