"""The notification outbox: rows of a state-store table are messages to send, claimed by a conditional
update so that two servers sharing a database never both send one.

A subsystem writes its notice row in the same transaction as the state change it announces (a cron
monitor failing, an issue that is new or regressed): once that commits, the message cannot be lost to a
crash. ``NoticeSender.drain`` then sends what waits, oldest first. Each row is *claimed* first with
``UPDATE ... WHERE id = :id AND <still waiting>``; only the server whose update changed the row sends it.

Two kinds of claim, chosen by the table (``NoticeTable.lease``):

* **final** (``lease=None``): the claim sets ``notified_at``; the message is handed to the notifier and
  the row is done. A kill between the hand-over and Slack's answer loses that one message (the
  notifier's queue is in memory). The cron monitors' ``monitor_changes`` works this way.
* **leased** (a table with ``claimed_at``): the claim sets ``claimed_at``; ``notified_at`` is set only
  when the notifier's delivery reached a final state (delivered, a counted repeat, or failed for good).
  A delivery dropped (queue full, shutdown) is released at once; a claim older than ``lease`` seconds
  (its server died) is taken over. At least once: a kill after Slack took the message but before the
  row was marked sends it again after the lease. Issue notices (``issue_notices``) and rule messages
  (``rule_messages``, each a group of rule notifications) work this way.

The hand-over runs inside the claim's transaction: if ``send`` raises, the claim is rolled back and the
row waits for the next round. Never run inside the ingest committer thread.

Replicas: before the conditional update, the row is locked with ``SELECT ... FOR UPDATE SKIP LOCKED``
(``claimable``). On PostgreSQL a row another server is claiming is then skipped at once instead of
waited for, so senders in several replicas (a leader and one that has not noticed yet that it lost the
lease, or every replica's ingest hook sending new-issue notices) divide the rows between them rather
than queueing on each other's locks. SQLite has no row locks (one writer at a time) and ignores the
clause; the conditional update decides there, as it still does on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, Engine, Table, and_, or_, select, update

#: Rows claimed per round.
NOTIFY_BATCH = 100


def claimable(conn: Connection, table: Table, ids: Sequence[int], condition: ColumnElement[bool]) -> set[int]:
    """The rows among ``ids`` that still meet ``condition``, locked until ``conn``'s transaction ends;
    rows another transaction holds are left out rather than waited for (``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL; SQLite ignores the clause). Claim them with a conditional update afterwards all the same."""
    if not ids:
        return set()
    query = select(table.c.id).where(and_(table.c.id.in_(list(ids)), condition))
    return {row.id for row in conn.execute(query.with_for_update(skip_locked=True))}


class AlertSender(Protocol):
    """What the outbox needs from ``alerts.delivery.Notifier``."""

    def send(self, alert: Any, *, channels: Sequence[str] | None = None, route: str = "send") -> Any:
        """Queue an alert; never blocks. Returns a ``Delivery`` (``done``, ``state``)."""
        ...


@dataclasses.dataclass(frozen=True)
class NoticeTable:
    """A table of notices: ``id`` primary key, ``notified_at`` NULL until sent (and ``claimed_at`` when
    ``lease`` is set). ``wanted`` narrows the rows that call for a message at all; ``build(row)`` gives
    the alert (None: nothing to send after all) and its route."""

    table: Table
    build: Callable[[Any], tuple[Any | None, str]]
    wanted: ColumnElement[bool] | None = None
    lease: float | None = None
    #: The notifier channels a row's message goes to (None: the route's), when rows choose them.
    channels: Callable[[Any], Sequence[str] | None] | None = None

    def waiting(self, now: float) -> ColumnElement[bool]:
        """Rows that still wait for a claim at ``now``."""
        columns = self.table.c
        condition: ColumnElement[bool] = columns.notified_at.is_(None)
        if self.wanted is not None:
            condition = and_(self.wanted, condition)
        if self.lease is not None:
            expired = or_(columns.claimed_at.is_(None), columns.claimed_at <= now - self.lease)
            condition = and_(condition, expired)
        return condition


class NoticeSender:
    """Sends the notices of one table (see the module docstring). Thread-safe; ``drain`` never raises
    for a broken notifier (the claim is rolled back), only for a broken state store."""

    def __init__(
        self,
        engine: Engine,
        notices: NoticeTable,
        notifier: AlertSender | None,
        build: Callable[[Any], tuple[Any | None, str]] | None = None,
    ) -> None:
        self.engine = engine
        self.notices = notices
        self.notifier = notifier
        self.build = build or notices.build
        self._lock = threading.Lock()
        self._in_flight: list[tuple[int, Any]] = []

    def drain(self, now: float, limit: int = NOTIFY_BATCH, hold: Callable[[Any], bool] | None = None) -> int:
        """Settle finished deliveries, then claim and send up to ``limit`` waiting notices; how many
        were handed to the notifier. A row for which ``hold(row)`` is true is left unclaimed this round
        (a message that waits for more to say)."""
        with self._lock:
            self._settle(now)
            return self._send(now, limit, hold)

    def _send(self, now: float, limit: int, hold: Callable[[Any], bool] | None) -> int:
        notices = self.notices
        table = notices.table
        with self.engine.connect() as conn:
            found = conn.execute(select(table).where(notices.waiting(now)).order_by(table.c.id).limit(limit))
            rows = list(found)
        sent = 0
        claim = "notified_at" if notices.lease is None else "claimed_at"
        for row in rows:
            if hold is not None and hold(row):
                continue
            with self.engine.begin() as conn:
                if not claimable(conn, table, [row.id], notices.waiting(now)):
                    continue  # another server is claiming it, or took it
                claimed = conn.execute(
                    update(table).where(and_(table.c.id == row.id, notices.waiting(now))).values({claim: now})
                ).rowcount
                if not claimed:
                    continue  # another server took it
                alert, route = self.build(row) if self.notifier is not None else (None, "")
                if alert is None or self.notifier is None:
                    # Nowhere to send it (no channel configured), or nothing to say: done with it.
                    conn.execute(update(table).where(table.c.id == row.id).values(notified_at=now))
                    continue
                channels = notices.channels(row) if notices.channels is not None else None
                delivery = self.notifier.send(alert, channels=channels, route=route)  # raises: rolls back
            sent += 1
            if notices.lease is not None:
                self._in_flight.append((row.id, delivery))
        return sent

    def _settle(self, now: float) -> None:
        """Mark notices whose delivery is final; release the ones that were dropped."""
        if not self._in_flight:
            return
        table = self.notices.table
        waiting: list[tuple[int, Any]] = []
        done: list[int] = []
        dropped: list[int] = []
        for row_id, delivery in self._in_flight:
            if not getattr(delivery, "done", True):
                waiting.append((row_id, delivery))
            elif getattr(delivery, "state", "") == "dropped":
                dropped.append(row_id)
            else:
                done.append(row_id)
        with self.engine.begin() as conn:
            if done:
                conn.execute(update(table).where(table.c.id.in_(done)).values(notified_at=now))
            if dropped:
                conn.execute(
                    update(table)
                    .where(and_(table.c.id.in_(dropped), table.c.notified_at.is_(None)))
                    .values(claimed_at=None)
                )
        self._in_flight = waiting
