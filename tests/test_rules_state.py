"""Rule state in the state store (SQLite, and PostgreSQL when TEST_POSTGRES_URL is set): it survives a
restart, a catch-up after downtime is one evaluation, and two servers never both log a message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from opswatch.server.rules.evaluate import advance
from opswatch.server.rules.load import rule_from_mapping
from opswatch.server.rules.service import RuleService
from opswatch.server.rules.signals import EventQuerySource
from opswatch.server.rules.store import Conflict
from opswatch.server.state import rules as rule_tables
from opswatch.server.state.base import create_engine_for
from opswatch.server.state.schema import current_version
from opswatch.server.store.duckdb import DuckDBStore
from rules_cast import T0, request
from state_databases import ENGINES, state_url

RULE = rule_from_mapping(
    {
        "name": "checkout-errors",
        "signal": "error_ratio",
        "where": "service = 'checkout'",
        "window": "1m",
        "critical": "> 0.5",
        "for": "2m",
    }
)


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh state store: a SQLite file, then a PostgreSQL schema when TEST_POSTGRES_URL is set."""
    yield from state_url(request.param, tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    """Checkout fails for every request between T0 and T0 + 10 min, then recovers."""
    with DuckDBStore(tmp_path / "events.duckdb") as opened:
        failing = [request(T0 + s, level="error") for s in range(0, 600, 5)]
        healthy = [request(T0 + 600 + s) for s in range(0, 1800, 5)]
        opened.append(failing + healthy)
        yield opened


class Server:
    """One server's view of the rules: its own engine on the shared URL ("a restart" is a new one)."""

    def __init__(self, url: str, store: DuckDBStore) -> None:
        self.engine = create_engine_for(url)
        rule_tables.install(self.engine)
        self.service = RuleService(self.engine, EventQuerySource(store), [RULE], ingest_delay=0)

    def at(self, minute: float) -> list[str]:
        """Evaluate at T0 + ``minute`` minutes; the kinds of the messages it logged."""
        before = _message_count(self.engine)
        self.service.run_once(T0 + 60 * minute)
        return _kinds(self.engine)[before:]

    def close(self) -> None:
        self.engine.dispose()


def _kinds(engine: Engine) -> list[str]:
    table = rule_tables.NOTIFICATIONS
    with engine.connect() as conn:
        return [row.kind for row in conn.execute(select(table.c.kind).order_by(table.c.id))]


def _message_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(rule_tables.NOTIFICATIONS)).scalar_one())


def test_it_records_its_schema_version(database_url: str, store: DuckDBStore) -> None:
    server = Server(database_url, store)
    assert current_version(server.engine, "rules") == rule_tables.SCHEMA_VERSION
    server.close()


def test_it_keeps_a_pending_instance_across_a_restart(database_url: str, store: DuckDBStore) -> None:
    first = Server(database_url, store)
    assert first.at(1) == []
    first.close()
    second = Server(database_url, store)
    assert second.service.state.instances(RULE.name)["{}"].status == "pending"
    assert second.at(2) == []
    assert second.at(3) == ["firing"]  # pending since minute 1, `for` is 2 minutes
    second.close()


def test_it_sends_no_second_firing_and_loses_no_resolve_across_a_restart(
    database_url: str, store: DuckDBStore
) -> None:
    first = Server(database_url, store)
    first.at(1)
    assert first.at(3) == ["firing"]
    first.close()
    second = Server(database_url, store)
    assert second.at(4) == [] and second.at(9) == []
    assert second.at(12) == ["resolved"]
    assert _kinds(second.engine) == ["firing", "resolved"]
    second.close()


def test_it_catches_up_after_downtime_with_one_evaluation(database_url: str, store: DuckDBStore) -> None:
    server = Server(database_url, store)
    server.at(1)
    server.at(3)
    server.close()
    later = Server(database_url, store)
    assert later.at(40) == ["resolved"]  # down for 37 minutes: one evaluation, one message
    assert later.service.rounds == 1
    instance = later.service.state.instances(RULE.name)["{}"]
    assert instance.firing_since == T0 + 180 and instance.resolved_at == T0 + 2400
    later.close()


def test_it_lets_only_one_of_two_servers_write_the_same_step(database_url: str, store: DuckDBStore) -> None:
    one, two = Server(database_url, store), Server(database_url, store)
    one.at(1)
    read_one = one.service.state.instances(RULE.name)
    read_two = two.service.state.instances(RULE.name)
    status = one.service.state.status(RULE.name)
    evaluation = one.service.preview(RULE.name, T0 + 180)
    one.service.state.save(RULE, advance(RULE, evaluation, read_one, status), read_one, T0 + 180)
    with pytest.raises(Conflict):
        two.service.state.save(RULE, advance(RULE, evaluation, read_two, status), read_two, T0 + 180)
    assert _kinds(one.engine) == ["firing"]
    one.close()
    two.close()


def test_it_prunes_state_of_removed_rules_stale_instances_and_old_notifications(
    database_url: str, store: DuckDBStore
) -> None:
    from opswatch.server.rules.store import prune

    server = Server(database_url, store)
    server.at(1)
    server.at(3)  # firing, one notification (pending: nobody drained it)
    other = rule_from_mapping({"name": "gone", "signal": "count", "window": "1m", "critical": "> 1e9"})
    server.service.rules[other.name] = other
    server.at(4)  # "gone" gets an inactive instance and a status row
    assert {name for name, _ in server.service.state.all_instances()} == {RULE.name, "gone"}
    assert prune(server.engine, [RULE.name], cutoff=T0 + 10_000) == 2  # gone's instance and status
    assert [name for name, _ in server.service.state.all_instances()] == [RULE.name]  # firing: kept
    assert _kinds(server.engine) == ["firing"]  # still pending: kept
    with server.engine.begin() as conn:
        conn.execute(rule_tables.NOTIFICATIONS.update().values(status="sent"))
    assert prune(server.engine, [RULE.name], cutoff=T0 + 10_000) == 1
    assert _kinds(server.engine) == []
    server.close()


def test_it_writes_an_instance_only_when_its_state_changes(database_url: str, store: DuckDBStore) -> None:
    server = Server(database_url, store)
    server.at(1)
    server.at(3)
    fired = server.service.state.instances(RULE.name)["{}"]
    server.at(4)
    server.at(5)
    stored = server.service.state.instances(RULE.name)["{}"]
    assert stored.version == fired.version and stored.last_eval_at == T0 + 180  # the same row
    assert server.service.latest(RULE.name, stored).last_eval_at == T0 + 300  # the reading, in memory
    server.close()


def test_it_resolves_the_alerts_of_a_rule_taken_out_of_the_file(
    database_url: str, store: DuckDBStore
) -> None:
    first = Server(database_url, store)
    first.at(1)
    assert first.at(3) == ["firing"]
    first.close()
    later = Server(database_url, store)
    later.service.rules.clear()  # restarted with a rules file that no longer has the rule
    assert later.at(4) == ["resolved"]
    table = rule_tables.NOTIFICATIONS
    with later.engine.connect() as conn:
        row = conn.execute(select(table).order_by(table.c.id.desc()).limit(1)).one()
    assert row.reason == "the rule was removed" and row.started_at == T0 + 180
    assert later.service.state.all_instances() == [] and later.at(5) == []
    later.close()
