"""The SQLAlchemy base every state table derives from, and the engine factory.

Each subsystem declares its own tables in its own module (``projects``, ``issues``, ``monitors``,
``alerting``) on this ``Base``; ``create_engine_for(url)`` makes an engine for SQLite or PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base for all state tables."""


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and a busy timeout so readers never block the writer."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)
