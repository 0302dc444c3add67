"""Dashboard sessions and silences in the state store, on SQLite and on PostgreSQL.

The HTTP tests (``test_dashboard.py``, ``test_auth_throttle.py``, ``test_rules_api.py``) run these
through a server on SQLite; here the state-level calls run on both engines (``state_url`` in
``conftest.py``): a session counts from its issue to its expiry unless revoked, only hashes are stored,
and silences are stored, listed, found active by the clock and expired.
"""

from __future__ import annotations

import datetime
import types
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from opswatch.server.rules.silences import Silences, UnknownSilence, parse_matchers
from opswatch.server.state import rules as rule_tables
from opswatch.server.state import sessions
from opswatch.server.state.base import create_engine_for
from opswatch.server.state.schema import current_version

NOW = datetime.datetime(2025, 11, 1, 12, 0, tzinfo=datetime.UTC)
HOUR = 3600.0


@pytest.fixture
def engine(state_url: str) -> Iterator[Engine]:
    engine = create_engine_for(state_url)
    sessions.install(types.SimpleNamespace(engine=engine))
    rule_tables.install(engine)
    yield engine
    engine.dispose()


def test_it_counts_a_session_from_its_issue_until_it_expires(engine: Engine) -> None:
    sessions.record(engine, "cookie-1", NOW, 8 * HOUR)
    assert sessions.active(engine, "cookie-1", NOW)
    assert sessions.active(engine, "cookie-1", NOW + datetime.timedelta(hours=7, minutes=59))
    assert not sessions.active(engine, "cookie-1", NOW + datetime.timedelta(hours=8))
    assert not sessions.active(engine, "never-issued", NOW)
    assert current_version(engine, "sessions") == sessions.SCHEMA_VERSION


def test_it_ends_one_session_or_all_of_them(engine: Engine) -> None:
    for cookie in ("a", "b", "c"):
        sessions.record(engine, cookie, NOW, HOUR)
    sessions.revoke(engine, "a")
    assert [sessions.active(engine, cookie, NOW) for cookie in ("a", "b", "c")] == [False, True, True]
    assert sessions.revoke_all(engine) == 2
    assert not sessions.active(engine, "b", NOW)


def test_it_stores_only_hashes_and_forgets_expired_sessions_on_the_next_issue(engine: Engine) -> None:
    sessions.record(engine, "old-cookie", NOW, HOUR)
    sessions.record(engine, "old-cookie", NOW, HOUR)  # issued again: one row, not two
    sessions.record(engine, "new-cookie", NOW + datetime.timedelta(hours=2), HOUR)
    with engine.connect() as conn:
        stored = [row[0] for row in conn.execute(text("SELECT id_hash FROM ui_sessions"))]
    assert len(stored) == 1 and len(stored[0]) == 64
    assert "new-cookie" not in stored[0]


def test_it_stores_lists_and_expires_silences(engine: Engine) -> None:
    silences = Silences(engine)
    t0 = NOW.timestamp()
    checkout = silences.create(
        parse_matchers([{"name": "service", "value": "checkout"}]),
        starts_at=t0,
        ends_at=t0 + HOUR,
        author="ops@example.com",
        comment="deploy",
        now=t0,
    )
    later = silences.create(
        parse_matchers([{"name": "rule", "value": "errors.*", "regex": True}]),
        starts_at=t0 + HOUR,
        ends_at=t0 + 2 * HOUR,
        author="ops@example.com",
        now=t0,
    )
    assert [s.id for s in silences.all()] == [later.id, checkout.id]  # newest first
    assert silences.get(checkout.id).matchers == checkout.matchers
    assert [s.id for s in silences.active(t0 + 60)] == [checkout.id]
    assert [s.id for s in silences.active(t0 + HOUR)] == [later.id]
    assert silences.expire(checkout.id, t0 + 120).ends_at == t0 + 120
    assert silences.expire(checkout.id, t0 + 600).ends_at == t0 + 120  # an ended silence keeps its end
    assert silences.active(t0 + 300) == []
    with pytest.raises(UnknownSilence, match="no silence has id 999"):
        silences.get(999)
