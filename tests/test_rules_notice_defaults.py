"""The issue and cron notifications as default rules (``issue-new``, ``issue-regressed``,
``cron-failing``): switched by their old settings, replaceable by name, muted by silences and inhibition,
still sent at once by their outboxes. A real server, real HTTP, a local Slack stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import or_, select

from ingest_helpers import donation, post_native
from opswatch.server.config import ServerSettings
from opswatch.server.rules import configured_rules, rules_for
from opswatch.server.state import rules as rule_tables
from opswatch.server.state.monitors import CHANGES
from opswatch.server.state.notices import ISSUE_NOTICES
from opswatch.server.testing import RunningServer, running_server
from slack_receiver import SlackReceiver

NOTICE_RULES = {"issue-new", "issue-regressed", "cron-failing"}


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


def crash(message: str, **fields: Any) -> dict[str, Any]:
    error = {"type": "PaymentError", "message": message}
    return donation(**{"level": "error", "kind": "error", "message": message, "error": error, **fields})


def api(server: RunningServer, method: str, path: str, **kwargs: Any) -> Any:
    answer = httpx.request(
        method,
        f"{server.url}/api/0{path}",
        headers=server.admin_headers,
        timeout=10,
        trust_env=False,
        **kwargs,
    )
    assert answer.status_code < 300, answer.text
    return answer.json()


def silence(server: RunningServer, **labels: str) -> None:
    matchers = [
        {"name": name, "value": value.lstrip("~"), "regex": value.startswith("~")}
        for name, value in labels.items()
    ]
    api(server, "POST", "/silences", json={"matchers": matchers, "author": "ana", "duration": "2h"})


def settled(server: RunningServer, table: Any, rows: int) -> None:
    """Wait until ``rows`` rows of an outbox table are handed over or kept back, then for delivery."""
    handled = table.c.notified_at.is_not(None)
    if "claimed_at" in table.c:
        handled = or_(handled, table.c.claimed_at.is_not(None))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with server.ctx.engine.connect() as conn:
            done = list(conn.execute(select(table.c.id).where(handled)))
        if len(done) >= rows:
            assert server.ctx.notifier.flush(10)
            return
        time.sleep(0.05)
    raise AssertionError(f"the outbox did not settle {rows} rows")


def test_the_old_settings_switch_the_notice_rules_on_and_off() -> None:
    everything = {rule.name for rule in configured_rules(ServerSettings.load(environ={}))}
    assert everything >= NOTICE_RULES
    quiet = ServerSettings.load(
        environ={"OPSWATCH_NOTIFY_NEW_ISSUES": "false", "OPSWATCH_NOTIFY_CRON_FAILURES": "false"}
    )
    assert {rule.name for rule in configured_rules(quiet)} & NOTICE_RULES == {"issue-regressed"}
    no_defaults = ServerSettings.load(environ={"OPSWATCH_RULES_DEFAULTS": "false"})
    assert {rule.name for rule in configured_rules(no_defaults)} == NOTICE_RULES


def test_a_silence_holds_back_a_new_issue_message_and_others_still_go(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    with running_server(tmp_path, slack_webhook_url=slack.url) as server:
        silence(server, rule="issue-new", title="~.*card declined.*")
        post_native(server, [crash("card declined at checkout")])
        post_native(server, [crash("ledger offline")])
        settled(server, ISSUE_NOTICES, 2)
        rules_for(server.ctx).dispatcher.drain(time.time())
        with server.ctx.engine.connect() as conn:
            logged = conn.execute(select(rule_tables.NOTIFICATIONS).order_by(rule_tables.NOTIFICATIONS.c.id))
            history = sorted((row.rule, row.labels["title"], row.status, row.silence_id) for row in logged)
    texts = slack.texts()
    assert len(texts) == 1 and texts[0].startswith("🚨 New issue"), texts
    assert "ledger offline" in texts[0]
    assert history == [
        ("issue-new", "PaymentError: card declined at checkout", "silenced", 1),
        ("issue-new", "PaymentError: ledger offline", "sent", None),
    ]


def test_a_rule_of_the_same_name_replaces_the_default(tmp_path: Path, slack: SlackReceiver) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rules]]\nname = "issue-new"\nsignal = "issue_new"\nwindow = "1h"\nissues = { level = "fatal" }\n'
    )
    with running_server(tmp_path, slack_webhook_url=slack.url, rules_file=rules) as server:
        post_native(server, [crash("card declined")])
        post_native(server, [crash("out of memory", level="fatal")])
        settled(server, ISSUE_NOTICES, 2)
    texts = slack.texts()
    assert len(texts) == 1 and texts[0].startswith("🔥 New issue") and "out of memory" in texts[0], texts


def test_a_firing_rule_that_inhibits_mutes_issue_messages(tmp_path: Path, slack: SlackReceiver) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rules]]\nname = "maintenance"\nsignal = "count"\nwhere = "operation = \'maintenance.window\'"\n'
        'window = "1h"\ncritical = "> 0"\ninhibits = { matchers = ["rule=~issue-.*"] }\n'
    )
    with running_server(  # the test runs the round: no background round races it
        tmp_path, slack_webhook_url=slack.url, rules_file=rules, rules_ingest_delay=0, rule_clock=False
    ) as server:
        post_native(server, [donation(operation="maintenance.window", timestamp=_ago(60))])
        runtime = rules_for(server.ctx)
        runtime.service.run_once()
        assert {i.status for i in runtime.service.state.instances("maintenance").values()} == {"firing"}
        post_native(server, [crash("card declined during maintenance")])
        settled(server, ISSUE_NOTICES, 1)
    assert not [text for text in slack.texts() if "New issue" in text]


def test_the_clock_shows_the_new_issue_alert_without_a_second_message(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    with running_server(  # the test runs the rounds: no background round races them
        tmp_path, slack_webhook_url=slack.url, rules_ingest_delay=0, rule_clock=False
    ) as server:
        post_native(server, [crash("card declined")])
        settled(server, ISSUE_NOTICES, 1)
        runtime = rules_for(server.ctx)
        runtime.service.run_once(time.time() + 1)
        runtime.clock.run_once(time.time() + 120)  # past group_wait: anything logged would be sent
        [alert] = runtime.service.state.instances("issue-new").values()
        assert alert.status == "firing" and alert.labels["title"] == "PaymentError: card declined"
        with server.ctx.engine.connect() as conn:
            logged = [(row.kind, row.status) for row in conn.execute(select(rule_tables.NOTIFICATIONS))]
        assert server.ctx.notifier.flush(10)
    assert logged == [("firing", "sent")]  # the outbox's message, noted in the log: nothing pending
    assert [text.splitlines()[0] for text in slack.texts()] == ["🚨 New issue"]


def test_a_silence_holds_back_a_failing_cron_message(tmp_path: Path, slack: SlackReceiver) -> None:
    with running_server(tmp_path, slack_webhook_url=slack.url) as server:
        for slug in ("backup", "reports"):
            api(server, "POST", "/monitors", json={"slug": slug, "config": {"schedule": "0 2 * * *"}})
        silence(server, rule="cron-failing", monitor="backup")
        for slug in ("backup", "reports"):
            url = f"{server.url}/ping/{server.key}/{slug}/fail"
            assert httpx.get(url, trust_env=False).status_code == 200
        settled(server, CHANGES, 2)
    failures = [text for text in slack.texts() if "Cron Job Failure" in text]
    assert len(failures) == 1 and "reports" in failures[0] and "backup" not in failures[0], failures


def _ago(seconds: float) -> str:
    from opswatch.record import format_timestamp

    return format_timestamp(time.time() - seconds)


def test_a_failing_monitor_is_an_alert_that_can_inhibit_issue_messages(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rules]]\nname = "cron-failing"\nsignal = "monitor_failing"\nwindow = "1m"\n'
        'inhibits = { matchers = ["rule=issue-new"], equal = ["project"] }\n'
    )
    with running_server(tmp_path, slack_webhook_url=slack.url, rules_file=rules, rule_clock=False) as server:
        api(server, "POST", "/monitors", json={"slug": "backup", "config": {"schedule": "0 2 * * *"}})
        assert httpx.get(f"{server.url}/ping/{server.key}/backup/fail", trust_env=False).status_code == 200
        settled(server, CHANGES, 1)
        runtime = rules_for(server.ctx)
        runtime.service.run_once()
        [alert] = runtime.service.state.instances("cron-failing").values()
        assert (alert.status, alert.labels["monitor"], alert.labels["project"]) == ("firing", "backup", "1")
        post_native(server, [crash("card declined while the backup fails")])
        settled(server, ISSUE_NOTICES, 1)
        assert httpx.get(f"{server.url}/ping/{server.key}/backup", trust_env=False).status_code == 200
        deadline = time.monotonic() + 60
        while alert.status == "firing" and time.monotonic() < deadline:
            runtime.service.run_once()
            [alert] = runtime.service.state.instances("cron-failing").values()
            time.sleep(0.05)
        assert alert.status == "inactive"
    texts = slack.texts()
    assert [t for t in texts if "Cron Job Failure" in t] and not [t for t in texts if "New issue" in t], texts


def test_a_silence_can_hold_back_one_regression_of_an_issue(tmp_path: Path, slack: SlackReceiver) -> None:
    with running_server(tmp_path, slack_webhook_url=slack.url) as server:
        silence(server, rule="issue-regressed", regression="1")
        post_native(server, [crash("card declined")])
        settled(server, ISSUE_NOTICES, 1)
        [issue] = api(server, "GET", "/issues", params={"status": "all"})["items"]
        for round_ in (2, 3):
            api(server, "POST", f"/issues/{issue['id']}/resolve")
            time.sleep(0.01)
            post_native(server, [crash("card declined")])
            settled(server, ISSUE_NOTICES, round_)
    texts = [text.splitlines()[0] for text in slack.texts()]
    assert texts == ["🚨 New issue", "🚨 Regressed issue"]
    assert "Regressions: 2" in slack.texts()[1]
