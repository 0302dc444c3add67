"""The contract between the server and its event store.

Records given to a store are the SDK's record shape (``opswatch.record``), already redacted, with three
server fields added by ingest: ``project_id`` (int), ``kind`` (``log``, ``error``, ``check_in``,
``transaction``, ``state_change`` ...) and ``received_at`` (RFC 3339). ``append`` returns only when the
records are durable (a crash afterwards loses none of them), and is idempotent by ``(project_id,
event_id)``, whatever the records' timestamps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

from ...record import Record, format_timestamp


@dataclasses.dataclass
class QueryResult:
    """Columns and rows of a read-only query; ``truncated`` when the row or size cap cut it."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False
    elapsed_ms: float = 0.0
    #: What cut the answer when ``truncated``: ``"rows"`` (the row cap) or ``"bytes"`` (the size cap).
    cut_by: str | None = None


class QueryError(Exception):
    """A query was refused or failed; the message is safe to show to the user."""


class QueryRefused(QueryError):
    """The SQL is not allowed (not a single read-only SELECT over the allowed views, or too long)."""


class QueryTimeout(QueryError):
    """The query ran past its time limit and was interrupted."""


class QueryBusy(QueryError):
    """Too many earlier queries are still being stopped; retry shortly."""


class StoreClosed(Exception):
    """The store was closed (or opened read-only) and cannot take writes."""


@dataclasses.dataclass(frozen=True)
class SchemaInfo:
    """What SQL can name: the allowed ``tables`` (views) and their ``columns``.

    ``aliases`` maps each camelCase alias column to the snake_case column it stands for; the query layer
    leaves aliases out of ``SELECT *``.
    """

    tables: tuple[str, ...]
    columns: tuple[str, ...]
    aliases: dict[str, str]
    #: Tables among ``tables`` that have no alias columns (``spans``): ``SELECT *`` is left as written.
    plain_tables: tuple[str, ...] = ()


@dataclasses.dataclass
class TailPage:
    """Records newer than a cursor, oldest first, and the cursor to pass next time."""

    records: list[Record]
    cursor: int


class EventStore(Protocol):
    """What the server needs from an event store."""

    def append(self, records: Sequence[Record]) -> int:
        """Store records durably; return how many were new (``(project_id, event_id)`` pairs already
        stored are skipped)."""
        ...

    def append_new(self, records: Sequence[Record]) -> list[int]:
        """``append``, answering the positions of the records that were new (for the ingest hooks)."""
        ...

    def query(self, sql: str, *, max_rows: int, timeout: float, max_bytes: int = ...) -> QueryResult:
        """Run one read-only statement (already checked by ``opswatch.server.query``): at most
        ``max_rows`` rows and about ``max_bytes`` bytes of values, answered within about ``timeout`` s."""
        ...

    def describe(self) -> SchemaInfo:
        """The views SQL may read and their columns (for checking and rewriting SQL)."""
        ...

    def tail(
        self,
        after: int | None = None,
        *,
        level: str | None = None,
        operation: str | None = None,
        text: str | None = None,
        project_id: int | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> TailPage:
        """Records stored after cursor ``after`` (or the latest ``limit`` when None), filtered.

        ``level`` keeps that level and above; ``operation`` matches exactly, or as a prefix when it
        ends with ``*``; ``text`` is a case-insensitive substring of the message. Pass the returned
        ``cursor`` back to get only newer records (``opswatch tail -f``, the dashboard's live view).
        """
        ...

    def get_events(self, event_ids: Sequence[str], *, project_id: int | None = None) -> dict[str, Record]:
        """The stored records with these event ids, as records (attributes back as fields)."""
        ...

    def delete_older_than(self, days: int) -> int:
        """Retention: delete events older than ``days`` days; return how many went."""
        ...

    def append_spans(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store span rows durably; return how many were new (idempotent by project, trace and span id)."""
        ...

    def delete_spans_older_than(self, days: int) -> int:
        """Span retention: delete spans that started more than ``days`` days ago; return how many went."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters for ``/metrics``: events stored, file size, queue depth ..."""
        ...

    def close(self) -> None:
        """Finish pending writes and release the file."""
        ...


def retention_cutoff(days: int, now: float) -> str:
    """The RFC 3339 time ``days`` days before ``now``, for ``delete_older_than`` and its span twin.

    Raises ``ValueError`` unless ``days`` is a whole number >= 0.
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"days must be a whole number >= 0, got {days!r}")
    return format_timestamp(now - days * 86_400)
