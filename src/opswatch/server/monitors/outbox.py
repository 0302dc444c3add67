"""The outbox: state changes go from ``monitor_changes`` to the event store and to the notifier.

Changes are written in the same transaction as the monitor state they describe (see ``service``); this
worker, run by the clock after each tick, copies the rows not yet ``stored`` into the event store as
records with ``kind="state_change"`` (idempotent by their ``event_id``, so a crash between the append
and the mark only repeats an append the store ignores), then sends the notifications that rows call
for through the server's notice outbox (``opswatch.server.outbox``, shared with issue notices): a
notification row is claimed with ``UPDATE ... SET notified_at = :now WHERE id = :id AND notified_at IS
NULL`` before it is sent, so two servers sharing a database never both send it.

The outbox never runs inside the ingest committer thread: appending from there would wait on itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, false, select, update

from ...log import get_logger
from ...record import format_timestamp
from ..outbox import AlertSender, NoticeSender, NoticeTable
from ..state.monitors import CHANGES
from . import notify

_log = get_logger("opswatch.server.monitors")

#: Rows copied to the event store per round, and notifications sent per round.
STORE_BATCH = 2_000
NOTIFY_BATCH = 100
#: While the store keeps failing, one error is logged per this many rounds (about a minute).
REPORT_EVERY = 60

_LEVELS = {"failing": "error", "missed": "warn", "timeout": "warn"}

#: Appends state-change records of one project durably (``pipeline.ingest`` or ``store.append``).
Sink = Callable[[int, list[dict[str, Any]]], object]


def _alert(row: Any) -> tuple[Any | None, str]:
    """The message a ``monitor_changes`` row calls for, and its route."""
    alert = notify.alert_for(row.notify, row.slug, row.project_id, row.at, dict(row.details or {}))
    return alert, notify.ROUTE


#: The notifications among the changes: rows with ``notify`` set, claimed once for good (``outbox.py``).
NOTICES = NoticeTable(CHANGES, _alert, wanted=CHANGES.c.notify.is_not(None))


@dataclasses.dataclass(frozen=True, slots=True)
class DrainReport:
    """One round: how many changes were stored and how many notifications were sent."""

    stored: int
    notified: int


def change_record(row: Any) -> dict[str, Any]:
    """The event-store record of a ``monitor_changes`` row (``kind="state_change"``)."""
    details = dict(row.details or {})
    record: dict[str, Any] = {
        "event_id": row.event_id,
        "timestamp": format_timestamp(row.at),
        "received_at": format_timestamp(row.created_at),
        "kind": "state_change",
        "level": _LEVELS.get(row.kind, "info"),
        "logger": "opswatch.monitors",
        "operation": f"monitor.{row.kind}",
        "message": f"monitor {row.slug}: {row.kind}",
        "project_id": row.project_id,
        "monitor_slug": row.slug,
        "change": row.kind,
        "status": row.status,
    }
    for key, value in details.items():
        if key.endswith(("_at", "since")) and isinstance(value, (int, float)):
            value = format_timestamp(value)
        record.setdefault(key, value)
    return record


class Outbox:
    """Moves state changes out of the state store; ``drain`` is called by the clock."""

    def __init__(self, engine: Engine, sink: Sink | None, notifier: AlertSender | None) -> None:
        self.engine = engine
        self.sink = sink
        self.notifier = notifier
        self.failures = 0
        self._failing_rounds = 0
        self._sender = NoticeSender(engine, NOTICES, notifier)

    def drain(self, now: float) -> DrainReport:
        """Copy pending changes to the event store and send pending notifications. Never raises."""
        stored = notified = 0
        failed = False
        try:
            stored = self._store()
        except Exception as err:
            failed = True
            self._report("monitor state changes could not be stored; will retry", err)
        try:
            notified = self._notify(now)
        except Exception as err:
            failed = True
            self._report("monitor notifications could not be sent; will retry", err)
        if not failed:
            self._failing_rounds = 0
        return DrainReport(stored, notified)

    def _report(self, message: str, err: Exception) -> None:
        """Log the first failure of a streak and then one per ``REPORT_EVERY`` rounds (the clock retries
        every second; the log should not)."""
        self.failures += 1
        if self._failing_rounds % REPORT_EVERY == 0:
            _log.error(message, {"failed_rounds": self._failing_rounds + 1}, err)
        self._failing_rounds += 1

    def _store(self) -> int:
        total = 0
        while True:
            with self.engine.connect() as conn:
                rows = list(
                    conn.execute(
                        select(CHANGES)
                        .where(CHANGES.c.stored == false())  # matches the partial index
                        .order_by(CHANGES.c.id)
                        .limit(STORE_BATCH)
                    )
                )
            if not rows:
                return total
            if self.sink is not None:
                by_project: dict[int, list[dict[str, Any]]] = {}
                for row in rows:
                    by_project.setdefault(row.project_id, []).append(change_record(row))
                for project_id, records in by_project.items():
                    self.sink(project_id, records)
            with self.engine.begin() as conn:
                conn.execute(
                    update(CHANGES).where(CHANGES.c.id.in_([row.id for row in rows])).values(stored=True)
                )
            total += len(rows)
            if len(rows) < STORE_BATCH:
                return total

    def _notify(self, now: float) -> int:
        return self._sender.drain(now, NOTIFY_BATCH)
