"""Small SQL helpers the issue modules share: dialect-aware upserts and UTC time conversion."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(conn: Connection, table: Any) -> Any:
    """An ``INSERT`` for ``table`` that supports ``on_conflict_do_*`` on SQLite and PostgreSQL."""
    target: Table = getattr(table, "__table__", table)
    if conn.dialect.name == "postgresql":
        return postgresql.insert(target)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(target)
    raise NotImplementedError(f"the issues tables support SQLite and PostgreSQL, not {conn.dialect.name}")


def utc(value: datetime.datetime | float | int) -> datetime.datetime:
    """An aware UTC datetime from a datetime (naive means UTC) or seconds since the epoch."""
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value.astimezone(datetime.UTC)
    return datetime.datetime.fromtimestamp(float(value), datetime.UTC)


def parse_time(value: Any) -> datetime.datetime | None:
    """A record's ``timestamp`` (RFC 3339 text or epoch seconds) as aware UTC, or None when unreadable."""
    try:
        if isinstance(value, str) and value:
            return utc(datetime.datetime.fromisoformat(value))
        if isinstance(value, int | float) and not isinstance(value, bool):
            return utc(value)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def iso(value: datetime.datetime | None) -> str | None:
    """RFC 3339 UTC with milliseconds (the record format), or None."""
    if value is None:
        return None
    value = utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
