"""Rule notifications: grouping timers, one message per change across restarts, silences, repeats,
templates; delivered by the real notifier to a local Slack stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from opswatch.alerts import Notifier
from opswatch.alerts.channels.slack import SlackChannel
from opswatch.server.rules.evaluate import advance
from opswatch.server.rules.load import rule_from_mapping
from opswatch.server.rules.model import Evaluation, Observation, Rule
from opswatch.server.rules.notify import Dispatcher, Timing
from opswatch.server.rules.silences import Silences, parse_matchers
from opswatch.server.rules.store import RuleStore
from opswatch.server.state import rules as rule_tables
from opswatch.server.state.base import create_engine_for
from slack_receiver import SlackReceiver

T0 = 1_800_000_000.0
TIMING = Timing(group_wait=30, group_interval=300, repeat_interval=3600)


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture
def engine(state_url: str) -> Iterator[Engine]:
    """The state store, on SQLite and on PostgreSQL (``state_url`` in ``conftest.py``)."""
    engine = create_engine_for(state_url)
    rule_tables.install(engine)
    yield engine
    engine.dispose()


class Alerts:
    """Rules whose readings are given by hand, persisted like the evaluator does, and a dispatcher."""

    def __init__(self, engine: Engine, slack: SlackReceiver, *rules: Rule) -> None:
        self.engine = engine
        self.rules = {rule.name: rule for rule in rules}
        self.state = RuleStore(engine)
        self.notifier = Notifier([SlackChannel(slack.url)], burst=20)
        self.slack = slack
        self.dispatcher = self.new_dispatcher()

    def new_dispatcher(self) -> Dispatcher:
        """A dispatcher as a restarted server makes it."""
        return Dispatcher(
            self.engine, self.notifier, lambda: self.rules, timing=TIMING, base_url="http://ops.example"
        )

    def read(self, at: float, values: dict[str, float | None], rule: str = "errors") -> None:
        chosen = self.rules[rule]
        found = tuple(Observation({"service": name}, value, 100) for name, value in values.items())
        instances = self.state.instances(rule)
        outcome = advance(chosen, Evaluation(at, at - 300, at, found), instances, self.state.status(rule))
        self.state.save(chosen, outcome, instances, at)

    def error(self, at: float, rule: str = "errors") -> None:
        chosen = self.rules[rule]
        instances = self.state.instances(rule)
        evaluation = Evaluation(at, at - 300, at, error="query timed out")
        self.state.save(
            chosen, advance(chosen, evaluation, instances, self.state.status(rule)), instances, at
        )

    def drain(self, at: float) -> list[str]:
        """Send what is due at ``at``; the texts Slack received in this round."""
        before = len(self.slack.messages)
        self.dispatcher.follow_up(at)
        report = self.dispatcher.drain(at)
        assert self.notifier.flush(10)
        texts = self.slack.texts()
        assert len(texts) - before == report.messages
        return texts[before:]

    def statuses(self) -> list[tuple[str, str]]:
        table = rule_tables.NOTIFICATIONS
        with self.engine.connect() as conn:
            return [(r.kind, r.status) for r in conn.execute(select(table).order_by(table.c.id))]

    def close(self) -> None:
        self.notifier.close(5)


def _rule(**keys: Any) -> Rule:
    data = {
        "name": "errors",
        "signal": "error_ratio",
        "window": "5m",
        "critical": "> 0.05",
        "group_by": ["service"],
    }
    return rule_from_mapping({**data, **keys})


@pytest.fixture
def alerts(engine: Engine, slack: SlackReceiver) -> Iterator[Alerts]:
    made = Alerts(engine, slack, _rule(resolve="< 0.01"))
    yield made
    made.close()


def test_it_waits_group_wait_then_names_rule_labels_value_threshold_and_start(alerts: Alerts) -> None:
    alerts.read(T0, {"checkout": 0.12})
    assert alerts.drain(T0 + 29) == []
    [text] = alerts.drain(T0 + 30)
    for words in (
        "errors",
        "service=checkout",
        "12.00%",
        "&gt; 5%",  # Slack's mrkdwn escape: shown as "> 5%"
        "2027-01-15 08:00:00 UTC",
        "http://ops.example/alerts/errors",
    ):
        assert words in text, words
    assert alerts.drain(T0 + 31) == []


def test_it_sends_a_resolve_after_group_interval_saying_how_long_it_lasted(alerts: Alerts) -> None:
    alerts.read(T0, {"checkout": 0.12})
    alerts.drain(T0 + 30)
    alerts.read(T0 + 120, {"checkout": 0.001})
    assert alerts.drain(T0 + 200) == []  # the group sent at T0 + 30; it waits until T0 + 330
    [text] = alerts.drain(T0 + 330)
    assert "resolved" in text.lower() and "Lasted" in text and "2m" in text


def test_it_puts_alerts_that_start_together_in_one_message(engine: Engine, slack: SlackReceiver) -> None:
    alerts = Alerts(engine, slack, _rule(group_notifications_by=[]))
    alerts.read(T0, {"checkout": 0.2, "search": 0.3})
    [text] = alerts.drain(T0 + 30)
    assert "2 alert changes" in text and "service=checkout" in text and "service=search" in text
    alerts.close()


def test_it_sends_each_notification_once_across_a_restart(alerts: Alerts) -> None:
    alerts.read(T0, {"checkout": 0.12})
    assert len(alerts.drain(T0 + 30)) == 1
    alerts.dispatcher = alerts.new_dispatcher()
    assert alerts.drain(T0 + 30) == [] and alerts.drain(T0 + 600) == []
    assert alerts.statuses() == [("firing", "sent")]


def test_it_records_a_silenced_notification_and_sends_no_resolve_for_it(alerts: Alerts) -> None:
    silence = Silences(alerts.engine).create(
        parse_matchers([{"name": "service", "value": "check.*", "regex": True}]),
        starts_at=T0, ends_at=T0 + 300, author="ana@example.org", comment="deploying", now=T0,
    )  # fmt: skip
    alerts.read(T0, {"checkout": 0.12})
    assert alerts.drain(T0 + 30) == []
    alerts.read(T0 + 360, {"checkout": 0.0})  # resolved after the silence ended
    assert alerts.drain(T0 + 400) == []
    assert alerts.statuses() == [("firing", "silenced"), ("resolved", "unannounced")]
    table = rule_tables.NOTIFICATIONS
    with alerts.engine.connect() as conn:
        assert conn.execute(select(table.c.silence_id).limit(1)).scalar_one() == silence.id


def test_it_announces_an_alert_still_firing_when_its_silence_expires(alerts: Alerts) -> None:
    silences = Silences(alerts.engine)
    silence = silences.create(
        parse_matchers([{"name": "rule", "value": "errors"}]),
        starts_at=T0, ends_at=T0 + 3600, author="ana@example.org", now=T0,
    )  # fmt: skip
    alerts.read(T0, {"checkout": 0.12})
    assert alerts.drain(T0 + 30) == []
    assert alerts.drain(T0 + 600) == []  # still silenced: nothing new
    silences.expire(silence.id, T0 + 900)
    assert alerts.drain(T0 + 900) == []  # logged now, waits for group_wait
    [text] = alerts.drain(T0 + 930)
    assert "Alert firing" in text and "service=checkout" in text
    alerts.read(T0 + 1000, {"checkout": 0.0})
    [resolved] = alerts.drain(T0 + 1300)
    assert "resolved" in resolved.lower()


def test_it_repeats_an_alert_still_firing_after_repeat_interval(alerts: Alerts) -> None:
    alerts.read(T0, {"checkout": 0.12})
    alerts.drain(T0 + 30)
    assert alerts.drain(T0 + 3000) == []
    assert alerts.drain(T0 + 3630) == []  # the repeat is logged at T0 + 3630 and waits group_wait
    [text] = alerts.drain(T0 + 3660)
    assert "still firing" in text.lower()


def test_it_uses_the_seeds_high_error_rate_template(engine: Engine, slack: SlackReceiver) -> None:
    alerts = Alerts(engine, slack, _rule(template="high_error_rate", window="10m"))
    alerts.read(T0, {"checkout": 0.075})
    [text] = alerts.drain(T0 + 30)
    assert "High Error Rate" in text and "7.5%" in text and "10m" in text and "&gt; 5%" in text
    alerts.close()


def test_it_tells_the_admin_about_an_evaluation_error_once(alerts: Alerts) -> None:
    alerts.error(T0)
    alerts.error(T0 + 60)
    [text] = alerts.drain(T0 + 30)
    assert "Alert rule failing" in text and "query timed out" in text
    alerts.error(T0 + 120)
    assert alerts.drain(T0 + 1000) == []


def test_it_mutes_alerts_a_firing_rule_inhibits_and_announces_them_when_it_resolves(
    engine: Engine, slack: SlackReceiver
) -> None:
    database = rule_from_mapping(
        {
            "name": "database-down",
            "signal": "count",
            "window": "1m",
            "critical": "> 0",
            "group_by": ["service"],
            "inhibits": {"matchers": ["rule=~err.*"], "equal": ["service"]},
        }
    )
    alerts = Alerts(engine, slack, _rule(), database)
    alerts.read(T0, {"checkout": 3.0}, rule="database-down")
    alerts.read(T0, {"checkout": 0.2, "search": 0.2})
    texts = alerts.drain(T0 + 30)
    assert sorted(t.split("\n")[0] for t in texts) == [
        "🔥 Alert firing: database-down",
        "🔥 Alert firing: errors",
    ]
    assert "service=search" in next(t for t in texts if "errors" in t.split("\n")[0])
    assert ("firing", "inhibited") in alerts.statuses()
    alerts.dispatcher = alerts.new_dispatcher()  # a restart: the log and the state carry over
    alerts.read(T0 + 60, {"checkout": 0.0}, rule="database-down")
    alerts.read(T0 + 60, {"checkout": 0.2, "search": 0.2})
    texts = alerts.drain(T0 + 330)
    assert any("Alert resolved: database-down" in t for t in texts)  # and errors is logged again now
    assert alerts.drain(T0 + 359) == []  # waiting group_wait
    [announced] = alerts.drain(T0 + 360)
    assert "Alert firing: errors" in announced and "service=checkout" in announced


def test_it_survives_a_broken_state_store_and_reports_it_once_per_minute(alerts: Alerts) -> None:
    from sqlalchemy import text

    from opswatch.testing import capture_logs

    alerts.read(T0, {"checkout": 0.12})
    with alerts.engine.begin() as conn:
        conn.execute(text("ALTER TABLE rule_notifications RENAME TO rule_notifications_away"))
    with capture_logs("error") as records:
        reports = [alerts.dispatcher.drain(T0 + 30 + i) for i in range(61)]
    assert all(report.messages == 0 for report in reports)
    assert [r["message"] for r in records] == ["rule notifications could not be sent; will retry"] * 2
    with alerts.engine.begin() as conn:
        conn.execute(text("ALTER TABLE rule_notifications_away RENAME TO rule_notifications"))
    assert len(alerts.drain(T0 + 100)) == 1  # nothing was lost
