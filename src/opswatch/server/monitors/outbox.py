"""The outbox: state changes go from ``monitor_changes`` to the event store and to the notifier.

Changes are written in the same transaction as the monitor state they describe (see ``service``); this
worker, run by the clock after each tick, copies the rows not yet ``stored`` into the event store as
records with ``kind="state_change"`` (idempotent by their ``event_id``, so a crash between the append
and the mark only repeats an append the store ignores), then sends the notifications that rows call
for through the server's notice outbox (``opswatch.server.outbox``, shared with issue notices): a
notification row is claimed with ``UPDATE ... SET notified_at = :now WHERE id = :id AND notified_at IS
NULL`` before it is sent, so two servers sharing a database never both send it. A failing message caused
by an ``error`` result first asks ``explain`` what failed (``run_errors``); when a Sentry SDK's error
event for the run is still on its way, the row is left unclaimed for up to ``ERROR_WAIT`` seconds and
sent then, with the error or without it.

The outbox never runs inside the ingest committer thread: appending from there would wait on itself.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, false, select, update

from ...log import get_logger
from ...record import format_timestamp
from ..outbox import AlertSender, NoticeSender, NoticeTable
from ..state.monitors import CHANGES
from . import notify
from .run_errors import awaits_error

_log = get_logger("opswatch.server.monitors")

#: Rows copied to the event store per round, and notifications sent per round.
STORE_BATCH = 2_000
NOTIFY_BATCH = 100
#: While the store keeps failing, one error is logged per this many rounds (about a minute).
REPORT_EVERY = 60
#: Longest a failing message waits, in real seconds, for the run's error event that a Sentry SDK sends
#: after its ``error`` check-in (so the message can say what failed).
ERROR_WAIT = 3.0

_LEVELS = {"failing": "error", "missed": "warn", "timeout": "warn"}

#: Appends state-change records of one project durably (``pipeline.ingest`` or ``store.append``).
Sink = Callable[[int, list[dict[str, Any]]], object]
#: What a failing message adds to its change's details when sent (``run_errors.FailureExplainer``).
Explainer = Callable[[int, Mapping[str, Any]], dict[str, Any]]


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

    def __init__(
        self,
        engine: Engine,
        sink: Sink | None,
        notifier: AlertSender | None,
        explain: Explainer | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        gate: Callable[[str, Mapping[str, Any]], bool] | None = None,
        channels: Callable[[str], Sequence[str] | None] | None = None,
    ) -> None:
        self.engine = engine
        #: Asked before a failing or recovered message is sent (``rules.outbox_rules``); False keeps it back.
        self.gate = gate
        #: The channels a ``monitor_failing``/``monitor_recovered`` message goes to (None: all).
        self.channels = channels
        self.sink = sink
        self.notifier = notifier
        self.explain = explain
        self._monotonic = monotonic
        #: Failing messages held back for their error event: row id -> when first held (monotonic).
        self._held: dict[int, float] = {}
        self.failures = 0
        self._failing_rounds = 0
        table = dataclasses.replace(NOTICES, channels=self._channels)
        self._sender = NoticeSender(engine, table, notifier, build=self._build)
        self._explained: dict[int, dict[str, Any]] = {}
        self._seen: set[int] = set()

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
        self._explained = {}
        self._seen = set()
        try:
            return self._sender.drain(now, NOTIFY_BATCH, hold=self._hold)
        finally:
            # Forget held rows that were not waiting any more (another server sent them).
            self._held = {row_id: since for row_id, since in self._held.items() if row_id in self._seen}

    def _details(self, row: Any) -> dict[str, Any]:
        """The change's details, with what failed added for a failing message (looked up once a round)."""
        found = self._explained.get(row.id)
        if found is None:
            found = dict(row.details or {})
            if self.explain is not None and row.notify == "failing":
                try:
                    found.update(self.explain(row.project_id, found))
                except Exception as err:  # the message goes without the cause rather than never
                    _log.error("the cause of a cron failure could not be looked up", {"slug": row.slug}, err)
            self._explained[row.id] = found
        return found

    def _hold(self, row: Any) -> bool:
        """True while a failing message waits (up to ``ERROR_WAIT``) for its run's error event."""
        self._seen.add(row.id)
        if row.notify == "failing" and awaits_error(self._details(row)):
            held = self._held.setdefault(row.id, self._monotonic())
            if self._monotonic() - held < ERROR_WAIT:
                return True  # not claimed: the next round looks again
        self._held.pop(row.id, None)
        return False

    def _build(self, row: Any) -> tuple[Any | None, str]:
        """The message a ``monitor_changes`` row calls for (with what failed), and its route."""
        facts = {
            "slug": row.slug,
            "project_id": row.project_id,
            "notice": f"monitor_changes#{row.id}",
            "since": row.at,
        }
        if self.gate is not None and not self.gate(f"monitor_{row.notify}", facts):
            return None, notify.ROUTE
        alert = notify.alert_for(row.notify, row.slug, row.project_id, row.at, self._details(row))
        return alert, notify.ROUTE

    def _channels(self, row: Any) -> Sequence[str] | None:
        """The channels the message of ``row`` goes to (``channels``; None: all)."""
        return self.channels(f"monitor_{row.notify}") if self.channels is not None else None
