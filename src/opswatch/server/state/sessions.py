"""Dashboard sessions kept on the server, so that logging out ends them.

The session cookie is signed (``opswatch.server.ui.session``) and expires on its own; a signature alone
cannot be taken back, so the server also keeps each issued cookie's SHA-256 here. A cookie counts only
while its row exists: ``revoke`` (log out) deletes one, ``revoke_all`` (log out everywhere) deletes
every one. Only hashes are stored: the table holds nothing a reader could log in with.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from sqlalchemy import DateTime, Engine, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .schema import ensure_schema

#: Version of this module's table; raise it and add an upgrade step when it changes.
SCHEMA_VERSION = 1


class UISession(Base):
    """One issued dashboard session."""

    __tablename__ = "ui_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)


def install(ctx: Any) -> None:
    """The subsystem's install step: create the table (idempotent)."""
    UISession.__table__.create(ctx.engine, checkfirst=True)  # type: ignore[attr-defined]
    ensure_schema(ctx.engine, "sessions", SCHEMA_VERSION)


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def record(engine: Engine, cookie: str, now: datetime.datetime, max_age: float) -> None:
    """Remember a newly issued ``cookie`` until ``now + max_age``; forget expired ones on the way."""
    expires = now + datetime.timedelta(seconds=max_age)
    digest = _digest(cookie)
    with engine.begin() as conn:
        conn.execute(delete(UISession).where(UISession.expires_at < now))
        conn.execute(delete(UISession).where(UISession.id_hash == digest))
        table: Any = UISession.__table__
        conn.execute(table.insert().values(id_hash=digest, created_at=now, expires_at=expires))


def active(engine: Engine, cookie: str, now: datetime.datetime) -> bool:
    """Whether ``cookie`` was issued here, not revoked, and not expired."""
    with engine.connect() as conn:
        expires = conn.execute(
            select(UISession.expires_at).where(UISession.id_hash == _digest(cookie))
        ).scalar_one_or_none()
    if expires is None:
        return False
    if expires.tzinfo is None:  # SQLite gives naive datetimes back
        expires = expires.replace(tzinfo=datetime.UTC)
    return expires > now


def revoke(engine: Engine, cookie: str) -> None:
    """End one session (log out)."""
    with engine.begin() as conn:
        conn.execute(delete(UISession).where(UISession.id_hash == _digest(cookie)))


def revoke_all(engine: Engine) -> int:
    """End every session (log out everywhere); return how many there were."""
    with engine.begin() as conn:
        return int(conn.execute(delete(UISession)).rowcount)
