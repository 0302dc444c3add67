"""What one evaluation round writes to the state store (SQLite, and PostgreSQL when TEST_POSTGRES_URL is
set): a rule that is inactive and stays inactive writes no instance or notification row, and all such
rules' evaluation times move in one statement, however many rules there are; a rule whose state changes
is still written (and announced) as before."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from opswatch.server.rules.load import rule_from_mapping
from opswatch.server.rules.model import Rule
from opswatch.server.rules.service import RuleService
from opswatch.server.rules.signals import EventQuerySource
from opswatch.server.state import rules as rule_tables
from opswatch.server.state.base import create_engine_for
from opswatch.server.store.duckdb import DuckDBStore
from rules_cast import T0, request
from state_databases import ENGINES, state_url

_WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)


def _quiet(name: str) -> Rule:
    """A rule over checkout's traffic that never breaches: one inactive instance, forever."""
    return rule_from_mapping(
        {
            "name": name,
            "signal": "count",
            "where": "service = 'checkout'",
            "window": "1m",
            "critical": "> 1e9",
        }
    )


FIRES = rule_from_mapping(
    {
        "name": "checkout-busy",
        "signal": "count",
        "where": "service = 'checkout'",
        "window": "1m",
        "critical": "> 0",
    }
)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh state store with the rules' tables."""
    for url in state_url(request.param, tmp_path):
        opened = create_engine_for(url)
        rule_tables.install(opened)
        yield opened
        opened.dispose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    """Checkout serves a request every 5 s for 30 minutes from T0."""
    with DuckDBStore(tmp_path / "events.duckdb") as opened:
        opened.append([request(T0 + s) for s in range(0, 1800, 5)])
        yield opened


class Writes:
    """The writing statements ``engine`` executes while listening: ``(verb, table)`` in order."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: list[tuple[str, str]] = []

    def _record(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        found = _WRITE.match(statement)
        if found:
            self.seen.append((found.group(1).split()[0].upper(), found.group(2).lower()))

    def __enter__(self) -> Writes:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


def _status_times(service: RuleService, names: list[str]) -> set[float | None]:
    return {service.state.status(name).last_eval_at for name in names}


def test_it_writes_no_row_for_an_unchanged_inactive_rule(engine: Engine, store: DuckDBStore) -> None:
    rule = _quiet("checkout-quiet")
    service = RuleService(engine, EventQuerySource(store), [rule], ingest_delay=0)
    service.run_once(T0 + 60)  # the first round creates the instance and the status
    [stored] = service.state.instances(rule.name).values()
    with Writes(engine) as writes:
        report = service.run_once(T0 + 120)
    assert report.evaluated == 1 and report.errors == 0
    assert [table for _, table in writes.seen if table != "rule_status"] == []
    assert writes.seen == [("UPDATE", "rule_status")]  # only the evaluation time moves
    assert service.state.instances(rule.name)[stored.key] == stored  # the row is as it was
    assert service.state.status(rule.name).last_eval_at == T0 + 120
    assert service.latest(rule.name, stored).last_eval_at == T0 + 120  # the reading, in memory


def test_it_moves_the_evaluation_time_of_many_unchanged_rules_in_one_statement(
    engine: Engine, store: DuckDBStore
) -> None:
    names = [f"checkout-quiet-{number}" for number in range(30)]
    service = RuleService(engine, EventQuerySource(store), [_quiet(name) for name in names], ingest_delay=0)
    service.run_once(T0 + 60)
    with Writes(engine) as writes:
        report = service.run_once(T0 + 120)
    assert report.evaluated == 30
    assert writes.seen == [("UPDATE", "rule_status")]
    assert _status_times(service, names) == {T0 + 120}


def test_it_still_writes_and_announces_a_rule_whose_state_changes(engine: Engine, store: DuckDBStore) -> None:
    quiet = _quiet("checkout-quiet")
    service = RuleService(engine, EventQuerySource(store), [quiet, FIRES], ingest_delay=0)
    service.run_once(T0 + 60)  # checkout-busy fires at once (`for` is 0)
    [fired] = service.state.instances(FIRES.name).values()
    assert fired.status == "firing"
    with Writes(engine) as writes:
        service.run_once(T0 + 120)  # both steady: nothing but the time
    assert writes.seen == [("UPDATE", "rule_status")]
    with Writes(engine) as writes:
        report = service.run_once(T0 + 3600)  # no traffic any more: checkout-busy resolves
    assert report.messages == 1
    assert ("UPDATE", "rule_instances") in writes.seen and ("INSERT", "rule_notifications") in writes.seen
    [resolved] = service.state.instances(FIRES.name).values()
    assert resolved.status == "inactive" and resolved.version == fired.version + 1
    assert _status_times(service, [quiet.name, FIRES.name]) == {T0 + 3600}
