"""One server at a time creates or upgrades the state store's tables.

Replicas started together on a fresh PostgreSQL (a compose file, a rolling deploy) would otherwise race
in ``CREATE TABLE``: both see a table missing, one creates it, the other fails with a unique violation
in PostgreSQL's catalog and the server does not start. ``schema_lock(engine)`` holds a session-level
advisory lock on a connection of its own while the block creates tables, so the others wait and then
find the tables there. The lock goes with the connection, also when the process dies. SQLite needs
nothing: it is one machine's file, and several servers on it share it through one process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from sqlalchemy import Engine, text

#: The advisory lock's key (a 64-bit number of our own: "opswatch" in ASCII).
LOCK_KEY: Final = 0x6F7073776174_6368


@contextlib.contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Hold the schema lock for the block on PostgreSQL; nothing on other databases."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            conn.commit()
