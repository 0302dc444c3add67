"""Outbox claims across replicas (``opswatch.server.outbox``): two senders with their own connections
draining one notice table at once send every notice once; on PostgreSQL a notice another sender holds is
skipped (``FOR UPDATE SKIP LOCKED``), not waited for. The notifier is the outbox's one-method seam
(``AlertSender``), recording what it is handed; the claims under test run on the real databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select, text, update

from opswatch.server.outbox import NoticeSender, NoticeTable
from opswatch.server.rules.notify import Dispatcher
from opswatch.server.state.base import Base, create_engine_for
from opswatch.server.state.notices import ISSUE_NOTICES
from opswatch.server.state.rules import NOTIFICATIONS
from opswatch.server.state.rules import install as install_rule_tables
from state_databases import state_url as fresh_state_url

NOTICES = 300


class Delivered:
    done = True
    state = "delivered"


class Recorder:
    """An ``AlertSender`` that keeps what it was handed (thread-safe)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self._lock = threading.Lock()

    def send(self, alert: Any, *, channels: Any = None, route: str = "send") -> Delivered:
        with self._lock:
            self.sent.append(alert)
        return Delivered()


def _build(row: Any) -> tuple[Any, str]:
    return row.id, "issues"


TABLE = NoticeTable(ISSUE_NOTICES, _build, lease=300.0)


def _fill(engine: Engine, count: int) -> None:
    Base.metadata.create_all(engine, tables=[ISSUE_NOTICES])
    rows = [
        {"issue_id": i, "project_id": 1, "kind": "new", "created_at": 0.0, "change": {}} for i in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(insert(ISSUE_NOTICES), rows)


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL schema (fails under CI=true when PostgreSQL is missing, skips elsewhere)."""
    yield from fresh_state_url("postgresql", tmp_path)


def _drain_all(sender: NoticeSender, start: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        start.wait(30)
        while sender.drain(1000.0, limit=10):
            pass
    except BaseException as err:  # surfaced by the test
        errors.append(err)


def test_two_senders_draining_at_once_send_every_notice_once(state_url: str) -> None:
    engines = [create_engine_for(state_url) for _ in range(3)]
    try:
        _fill(engines[2], NOTICES)
        recorders = [Recorder(), Recorder()]
        senders = [NoticeSender(engines[i], TABLE, recorders[i]) for i in range(2)]
        start = threading.Barrier(2)
        errors: list[BaseException] = []
        threads = [threading.Thread(target=_drain_all, args=(s, start, errors)) for s in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        sent = recorders[0].sent + recorders[1].sent
        assert sorted(sent) == sorted(set(sent))  # nothing twice
        with engines[2].connect() as conn:
            ids = sorted(conn.execute(select(ISSUE_NOTICES.c.id)).scalars())
        assert sorted(sent) == ids  # and nothing left out
    finally:
        for engine in engines:
            engine.dispose()


def _impatient(url: str) -> Engine:
    """An engine whose statements fail after 2 s waiting for a lock, so a sender that waits shows."""
    engine = create_engine_for(url)

    @event.listens_for(engine, "connect")
    def _lock_timeout(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        dbapi_connection.commit()  # a SET in a transaction rolled back later would be undone

    return engine


def test_it_skips_a_notice_another_sender_holds_instead_of_waiting(postgres_url: str) -> None:
    holder, engine = create_engine_for(postgres_url), _impatient(postgres_url)
    try:
        _fill(holder, 3)
        recorder = Recorder()
        sender = NoticeSender(engine, TABLE, recorder)
        with holder.begin() as conn:  # another replica is in the middle of claiming the first notice
            first = conn.execute(
                select(ISSUE_NOTICES.c.id).order_by(ISSUE_NOTICES.c.id).limit(1).with_for_update()
            ).scalar_one()
            assert sender.drain(1000.0) == 2
            assert first not in recorder.sent
            conn.rollback()  # ... and gives it up
        assert sender.drain(1000.0) == 1
        assert sorted(recorder.sent) == [first, first + 1, first + 2]
    finally:
        holder.dispose()
        engine.dispose()


def _pending_rule_notice(engine: Engine, rule: str) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(NOTIFICATIONS)
                .values(
                    rule=rule,
                    key_hash="k",
                    labels={},
                    kind="firing",
                    severity="critical",
                    value=0.0,
                    started_at=900.0,
                    at=900.0,
                    reason=None,
                    group_key=rule,
                    created_at=900.0,
                    status="pending",
                )
                .returning(NOTIFICATIONS.c.id)
            ).scalar_one()
        )


def test_a_rule_notification_another_sender_holds_is_skipped_and_the_rest_sent(postgres_url: str) -> None:
    holder, engine = create_engine_for(postgres_url), _impatient(postgres_url)
    try:
        install_rule_tables(holder)
        held = _pending_rule_notice(holder, "no-orders")  # first in line
        _pending_rule_notice(holder, "no-signups")
        recorder = Recorder()
        dispatcher = Dispatcher(engine, recorder, dict, base_url="")
        with holder.begin() as conn:  # another replica is sending "no-orders"
            conn.execute(select(NOTIFICATIONS.c.id).where(NOTIFICATIONS.c.id == held).with_for_update()).one()
            assert dispatcher.drain(1000.0).sent == 1  # "no-signups", without waiting for the lock
            conn.execute(update(NOTIFICATIONS).where(NOTIFICATIONS.c.id == held).values(status="sent"))
        assert dispatcher.drain(1000.0).sent == 0  # the other replica sent "no-orders": not again
        assert len(recorder.sent) == 1
        assert "no-signups" in str(recorder.sent[0]) and "no-orders" not in str(recorder.sent[0])
        with holder.begin() as conn:
            conn.execute(text("UPDATE rule_notifications SET status = 'pending' WHERE rule = 'no-orders'"))
        assert dispatcher.drain(1000.0).sent == 1 and len(recorder.sent) == 2
    finally:
        holder.dispose()
        engine.dispose()
