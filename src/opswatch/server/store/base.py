"""The contract between the server and its event store.

Records given to a store are the SDK's record shape (``opswatch.record``), already redacted, with three
server fields added by ingest: ``project_id`` (int), ``kind`` (``log``, ``error``, ``check_in``,
``transaction``, ``state_change`` ...) and ``received_at`` (RFC 3339). ``append`` returns only when the
records are durable (a crash afterwards loses none of them), and is idempotent by ``event_id``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

from ...record import Record


@dataclasses.dataclass
class QueryResult:
    """Columns and rows of a read-only query; ``truncated`` when the row cap cut it."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False
    elapsed_ms: float = 0.0


class QueryError(Exception):
    """A query was refused or failed; the message is safe to show to the user."""


class EventStore(Protocol):
    """What the server needs from an event store."""

    def append(self, records: Sequence[Record]) -> int:
        """Store records durably; return how many were new (event ids already stored are skipped)."""
        ...

    def query(self, sql: str, *, max_rows: int, timeout: float) -> QueryResult:
        """Run one read-only statement (already checked by ``opswatch.server.query``)."""
        ...

    def delete_older_than(self, days: int) -> int:
        """Retention: delete events older than ``days`` days; return how many went."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters for ``/metrics``: events stored, file size, queue depth ..."""
        ...

    def close(self) -> None:
        """Finish pending writes and release the file."""
        ...
