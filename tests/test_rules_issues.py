"""Issue rules: an issue seen more than N times in a window, affecting more than N users, a new fatal
issue, a regression in production. Issues are recorded by the real issue service into a state store
(SQLite, and PostgreSQL when TEST_POSTGRES_URL is set) (and the events into a DuckDB store for users); the rule service evaluates at injected times, and
the real dispatcher sends to a local Slack stand-in with a link to the issue's page."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opswatch.alerts import Notifier
from opswatch.alerts.channels.slack import SlackChannel
from opswatch.server import limits
from opswatch.server.issues import IssueService
from opswatch.server.issues.service import install_tables
from opswatch.server.rules.load import RuleError, rule_from_mapping
from opswatch.server.rules.notify import Dispatcher, Timing
from opswatch.server.rules.views import rule_view
from opswatch.server.state.base import create_engine_for
from rules_cast import T0, request
from rules_kinds_harness import Rules
from slack_receiver import SlackReceiver

MINUTE = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Issues:
    """Errors recorded into issues at given times, and the rules over them."""

    def __init__(self, tmp_path: Path, url: str, rules: list[dict[str, Any]]) -> None:
        self.clock = Clock()
        engine = create_engine_for(url)
        install_tables(engine)
        self.issues = IssueService(engine, now=self.clock)
        self.rules = Rules(tmp_path, rules, engine=engine)

    def errors(
        self, at: float, kind: str = "PaymentError", count: int = 1, level: str = "error", **fields: Any
    ) -> int:
        """``count`` errors of one kind at ``at`` (the server's clock too); the issue's id."""
        self.clock.now = at
        records = [
            request(at + i, level=level, error={"type": kind, "message": "card declined"}, **fields)
            for i in range(count)
        ]
        self.rules.add(records)
        self.issues.record(records)
        return int(self.issues.issue_for_event(1, records[0]["event_id"]) or 0)

    def at(self, when: float) -> list[str]:
        return self.rules.at(when)


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


def test_it_fires_per_issue_seen_more_than_n_times_in_the_window(
    tmp_path: Path, state_url: str, slack: SlackReceiver
) -> None:
    rule = {"name": "busy-issue", "signal": "issue_events", "window": "10m", "critical": "> 5"}
    world = Issues(tmp_path, state_url, [rule])
    busy = world.errors(T0, "PaymentError", count=8)
    world.errors(T0 + 30, "LedgerError", count=2)
    assert world.at(T0 + 5 * MINUTE) == ["firing"]
    [note] = world.rules.notes()
    assert note["labels"] == {
        "rule": "busy-issue", "issue_id": str(busy), "title": "PaymentError: card declined",
        "level": "error", "project": "1",
    }  # fmt: skip
    assert note["value"] == 8.0
    assert world.at(T0 + 11 * MINUTE) == ["resolved"]  # the window moved past the burst
    notifier = Notifier([SlackChannel(slack.url)])
    dispatcher = Dispatcher(
        world.rules.engine, notifier, lambda: world.rules.service.rules,
        timing=Timing(0, 0, 3600), base_url="http://ops.example",
    )  # fmt: skip
    dispatcher.drain(T0 + 12 * MINUTE)
    assert notifier.flush(10)
    notifier.close(5)
    texts = slack.texts()
    assert len(texts) == 1 and "busy-issue" in texts[0]  # the firing and the resolve, one group message
    buttons = [b for b in slack.messages[0]["blocks"] if b["type"] == "actions"]
    assert buttons[0]["elements"][0]["url"] == f"http://ops.example/issues/{busy}"
    world.rules.close()


def test_it_fires_per_issue_affecting_more_than_n_users(tmp_path: Path, state_url: str) -> None:
    rule = {"name": "many-users", "signal": "issue_users", "window": "1h", "critical": "> 2"}
    world = Issues(tmp_path, state_url, [rule])
    spread = world.errors(T0, "PaymentError", user_id="ann")
    world.errors(T0 + 60, "PaymentError", user_id="bob")
    world.errors(T0 + 120, "PaymentError", count=3, user_id="cy")
    world.errors(T0 + 180, "LedgerError", count=9, user_id="dee")  # many events, one user
    readings = {o.group["title"]: o.value for o in world.rules.reading("many-users", T0 + 30 * MINUTE)}
    assert readings == {"PaymentError: card declined": 3.0, "LedgerError: card declined": 1.0}
    assert world.at(T0 + 30 * MINUTE) == ["firing"]
    assert world.rules.notes()[0]["labels"]["issue_id"] == str(spread)
    world.rules.close()


def test_it_announces_a_new_fatal_issue_once_and_ends_without_a_resolve(
    tmp_path: Path, state_url: str
) -> None:
    rule = {"name": "new-fatal", "signal": "issue_new", "window": "1h", "issues": {"level": "fatal"}}
    world = Issues(tmp_path, state_url, [rule])
    world.errors(T0, "LedgerError", level="error")
    fatal = world.errors(T0 + 60, "OutOfMemory", level="fatal")
    world.errors(T0 + 120, "OutOfMemory", level="fatal")  # the same issue again: not new
    assert world.at(T0 + 5 * MINUTE) == ["firing"]
    assert world.at(T0 + 10 * MINUTE) == []
    assert world.at(T0 + 2 * 60 * MINUTE) == []  # out of the window: over, without a message
    [note] = world.rules.notes()
    assert (note["labels"]["issue_id"], note["labels"]["level"]) == (str(fatal), "fatal")
    assert (
        world.rules.status("new-fatal")[
            f"issue_id={fatal},level=fatal,project=1,title=OutOfMemory: card declined"
        ]
        == "inactive"
    )
    world.rules.close()


def test_it_announces_each_regression_in_production(tmp_path: Path, state_url: str) -> None:
    rule = {
        "name": "regressed-prod", "signal": "issue_regressed", "window": "1h",
        "issues": {"environment": "production"},
    }  # fmt: skip
    world = Issues(tmp_path, state_url, [rule])
    issue = world.errors(T0, "PaymentError")
    staging = world.errors(T0, "LedgerError", environment="staging")
    for which in (issue, staging):
        world.issues.resolve(which, actor="ann")
    world.errors(T0 + 10 * MINUTE, "PaymentError")
    world.errors(T0 + 10 * MINUTE, "LedgerError", environment="staging")
    assert world.at(T0 + 15 * MINUTE) == ["firing"]
    world.issues.resolve(issue, actor="ann")
    world.errors(T0 + 20 * MINUTE, "PaymentError")
    assert world.at(T0 + 25 * MINUTE) == ["firing"]
    regressions = [(n["labels"]["issue_id"], n["labels"]["regression"]) for n in world.rules.notes()]
    assert regressions == [(str(issue), "1"), (str(issue), "2")]
    world.rules.close()


def test_it_leaves_ignored_issues_out(tmp_path: Path, state_url: str) -> None:
    rule = {"name": "busy-issue", "signal": "issue_events", "window": "10m", "critical": "> 1"}
    world = Issues(tmp_path, state_url, [rule])
    issue = world.errors(T0, count=5)
    world.issues.ignore(issue, actor="ann", duration=datetime.timedelta(days=1))
    assert world.at(T0 + 5 * MINUTE) == []
    world.rules.close()


@pytest.mark.parametrize(
    ("keys", "key", "problem"),
    [
        ({"signal": "count", "issues": {"level": "fatal"}}, "issues", "only issue signals"),
        ({"issues": {"level": "warning"}}, "issues", "level: expected 'error' or 'fatal'"),
        ({"issues": {"project": "one"}}, "issues", "project: expected a project id"),
        ({"issues": {"service": "x"}}, "issues", "expected { level"),
        ({"where": "level = 'fatal'"}, "where", "issue rules choose issues"),
        ({"group_by": ["service"]}, "group_by", "one instance per issue"),
        ({"compare": "1w"}, "compare", "no baseline"),
    ],
)
def test_it_names_the_key_of_a_bad_issue_rule(keys: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(RuleError) as caught:
        rule_from_mapping({"name": "r", "signal": "issue_events", "window": "1h", "critical": "> 1", **keys})
    assert caught.value.key == key
    assert problem in str(caught.value)


def test_it_shows_an_issue_rules_filter_in_its_view() -> None:
    rule = {"name": "r", "signal": "issue_new", "window": "1h", "issues": {"level": "fatal", "project": 2}}
    view = rule_view(rule_from_mapping(rule))
    assert (view["kind"], view["issues"], view["critical"]) == (
        "issue",
        {"level": "fatal", "project": 2},
        "> 0",
    )


def test_it_reads_users_up_to_the_limit_and_names_the_limit_past_it(
    tmp_path: Path, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = {"name": "many-users", "signal": "issue_users", "window": "1h", "critical": "> 2"}
    world = Issues(tmp_path, state_url, [rule])
    for who in ("ann", "bob", "cy"):
        world.errors(T0, user_id=who)
    monkeypatch.setattr(limits, "RULES_ISSUE_USER_EVENTS", 3)
    [reading] = world.rules.reading("many-users", T0 + 60)
    assert reading.value == 3.0
    world.errors(T0 + 1, user_id="dee")
    evaluation = world.rules.service.preview("many-users", T0 + 60)
    assert evaluation.error is not None and "more than 3 error events with a user" in evaluation.error
    world.rules.close()
