"""A round's snapshot of the rules' state reads exactly what was written, on SQLite and PostgreSQL
(when TEST_POSTGRES_URL is set), also in the rounds after, when it reuses the JSON it decoded before."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from opswatch.server.rules.evaluate import Outcome
from opswatch.server.rules.load import rule_from_mapping
from opswatch.server.rules.machine import Instance, RuleStatus
from opswatch.server.rules.model import Rule, instance_key
from opswatch.server.rules.store import RuleStore
from opswatch.server.state import rules as rule_tables
from opswatch.server.state.base import create_engine_for
from state_databases import ENGINES, state_url


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    for url in state_url(request.param, tmp_path):
        made = create_engine_for(url)
        rule_tables.install(made)
        yield made
        made.dispose()


def _rule(name: str) -> Rule:
    return rule_from_mapping({"name": name, "signal": "count", "window": "1m", "critical": "> 1"})


def _instance(labels: dict[str, str], **state: object) -> Instance:
    return Instance(key=instance_key(labels), labels=labels, **state)  # type: ignore[arg-type]


FIRING = _instance(
    {"service": "checkout", "region": "eu-west"},
    status="firing", severity="critical", health="nodata", value=0.25, events=40, pending_since=100.0,
    firing_since=160.0, last_breach_at=205.0, clear_since=190.0, resolved_at=50.0, last_eval_at=210.0,
    transitions=(10.0, 50.0, 160.0), flapping=True,
)  # fmt: skip
QUIET = _instance({}, last_eval_at=200.0)
SAME_LABELS = _instance({"service": "checkout", "region": "eu-west"}, status="pending", pending_since=190.0)


def _save(store: RuleStore, rule: Rule, instances: tuple[Instance, ...], read: dict[str, Instance]) -> None:
    store.save(rule, Outcome(instances, (), RuleStatus(last_eval_at=200.0)), read, 200.0)


def test_it_reads_in_a_snapshot_what_each_rule_wrote(engine: Engine) -> None:
    store = RuleStore(engine)
    _save(store, _rule("a"), (FIRING, QUIET), {})
    _save(store, _rule("b"), (SAME_LABELS,), {})  # the same labels' text as a's first instance
    written = {
        "a": {
            FIRING.key: dataclasses.replace(FIRING, version=1),
            QUIET.key: dataclasses.replace(QUIET, version=1),
        },
        "b": {SAME_LABELS.key: dataclasses.replace(SAME_LABELS, version=1)},
    }
    for _ in range(2):  # the second snapshot decodes nothing again
        instances, statuses = store.snapshot()
        assert instances == written == {name: store.instances(name) for name in ("a", "b")}
        assert set(statuses) == {"a", "b"} and statuses["a"] == RuleStatus(last_eval_at=200.0)


def test_it_reads_an_instance_changed_since_the_last_snapshot(engine: Engine) -> None:
    store = RuleStore(engine)
    _save(store, _rule("a"), (FIRING,), {})
    before = store.snapshot()[0]["a"]
    resolved = dataclasses.replace(
        before[FIRING.key], status="inactive", resolved_at=260.0, transitions=(50.0, 160.0, 260.0)
    )
    _save(store, _rule("a"), (resolved,), before)
    assert store.snapshot()[0]["a"] == {FIRING.key: dataclasses.replace(resolved, version=2)}
