"""The notice rules (``issue-new``, ``issue-regressed``, ``cron-failing``) honour a silence that ends: a
message held back by a silence is sent once when the silence ends (or is expired by hand) while its
alert still fires, never when the alert stopped firing meanwhile, and never twice across a restart.

A real server with an injected clock, a local Slack stand-in, and every background clock stopped: the
test drives the outboxes and the rule clock's follow-ups by hand, each at a time it chooses.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ingest_helpers import donation, post_native
from opswatch.record import format_timestamp
from opswatch.server.rules import rules_for
from opswatch.server.state import rules as rule_tables
from opswatch.server.state.monitors import CHANGES
from opswatch.server.testing import RunningServer, running_server
from slack_receiver import SlackReceiver

T0 = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC).timestamp()


class Clock:
    """The servers' clock: stands still until the test moves it."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.at, datetime.UTC)


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


@contextlib.contextmanager
def server(tmp_path: Path, clock: Clock, **settings: Any) -> Iterator[RunningServer]:
    """A server on the test's files with every background worker stopped (nothing ticks by itself)."""
    with running_server(
        tmp_path, now=clock, leader_election="off", rule_clock=False, rules_ingest_delay=0, **settings
    ) as running:
        for worker in running.ctx.background:
            worker.stop()
        yield running


def worker(running: RunningServer, name: str) -> Any:
    return next(item for item in running.ctx.background if type(item).__name__ == name)


def api(running: RunningServer, method: str, path: str, **kwargs: Any) -> Any:
    answer = httpx.request(
        method,
        f"{running.url}/api/0{path}",
        headers=running.admin_headers,
        timeout=10,
        trust_env=False,
        **kwargs,
    )
    assert answer.status_code < 300, answer.text
    return answer.json()


def silence(running: RunningServer, duration: str, **labels: str) -> int:
    matchers = [{"name": name, "value": value} for name, value in labels.items()]
    made = api(
        running, "POST", "/silences", json={"matchers": matchers, "author": "ana", "duration": duration}
    )
    return int(made["id"])


def ping(running: RunningServer, slug: str, outcome: str = "") -> None:
    url = f"{running.url}/ping/{running.key}/{slug}" + (f"/{outcome}" if outcome else "")
    assert httpx.get(url, trust_env=False, timeout=10).status_code == 200


def changes(running: RunningServer, wanted: int) -> None:
    """Wait until the monitor service wrote ``wanted`` notifying changes (its hook follows the ping)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with running.ctx.engine.connect() as conn:
            found = list(conn.execute(select(CHANGES.c.id).where(CHANGES.c.notify.is_not(None))))
        if len(found) >= wanted:
            return
        time.sleep(0.02)
    raise AssertionError(f"the monitor did not write {wanted} notifying changes")


def settle(running: RunningServer, clock: Clock, at: float) -> None:
    """One round at ``at`` (the servers' clock moved there), in the order the clocks run: the outboxes send what waits (asking the rules),
    the rule clock writes their decisions to the log, logs follow-ups (releases) and drains; the
    outboxes then send what was handed back, and the notifier delivers."""
    clock.at = at
    cron = worker(running, "CronClock").outbox
    issues = worker(running, "IssueSweeper").notices
    dispatcher = rules_for(running.ctx).dispatcher
    cron.drain(at)
    issues.drain(running.ctx.notifier, at)
    dispatcher.drain(at)
    dispatcher.follow_up(at)
    cron.drain(at)
    issues.drain(running.ctx.notifier, at)
    dispatcher.drain(at)
    assert running.ctx.notifier.flush(10)
    issues.drain(running.ctx.notifier, at)  # settles the leased claims of what was delivered


def history(running: RunningServer, rule: str) -> list[tuple[str, int | None]]:
    """The notification log of ``rule``: (status, silence), oldest first."""
    table = rule_tables.NOTIFICATIONS
    query = select(table.c.status, table.c.silence_id).where(table.c.rule == rule).order_by(table.c.id)
    with running.ctx.engine.connect() as conn:
        return [(row.status, row.silence_id) for row in conn.execute(query)]


def backup_fails_under_silence(running: RunningServer, clock: Clock, duration: str, **labels: str) -> int:
    """The ``backup`` monitor fails at T0 under a new silence of ``cron-failing`` (matching ``labels``)
    for ``duration``; one round held its message back. The silence's id."""
    api(running, "POST", "/monitors", json={"slug": "backup", "config": {"schedule": "0 2 * * *"}})
    muted = silence(running, duration, rule="cron-failing", **labels)
    ping(running, "backup", "fail")
    changes(running, 1)
    settle(running, clock, T0 + 1)
    return muted


def crash(message: str) -> dict[str, Any]:
    error = {"type": "PaymentError", "message": message}
    return donation(level="error", kind="error", message=message, error=error)


def test_it_sends_a_held_back_cron_failure_once_when_its_silence_ends_while_the_monitor_still_fails(
    tmp_path: Path, slack: SlackReceiver, state_url: str
) -> None:
    clock = Clock(T0)
    with server(tmp_path, clock, slack_webhook_url=slack.url, database_url=state_url) as running:
        muted = backup_fails_under_silence(running, clock, "30m", monitor="backup")
        settle(running, clock, T0 + 600)  # the silence still holds
        assert slack.texts() == []
        assert history(running, "cron-failing") == [("silenced", muted)]
        clock.at = T0 + 1801  # the silence ended a second ago; the monitor still fails
        settle(running, clock, clock.at)
        settle(running, clock, clock.at + 60)
        settle(running, clock, clock.at + 3600)
        log = history(running, "cron-failing")
    [text] = slack.texts()
    assert "Cron Job Failure" in text and "backup" in text
    assert log == [("released", muted), ("sent", None)]


def test_it_does_not_send_a_held_back_cron_failure_when_the_monitor_recovered_before_the_silence_ended(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    clock = Clock(T0)
    with server(tmp_path, clock, slack_webhook_url=slack.url) as running:
        muted = backup_fails_under_silence(running, clock, "2h", monitor="backup")
        clock.at = T0 + 300
        ping(running, "backup")  # recovered, still silenced: nothing was announced, nothing to resolve
        changes(running, 2)
        settle(running, clock, clock.at)
        clock.at = T0 + 600
        api(running, "POST", f"/silences/{muted}/expire")  # by hand, after the episode ended
        settle(running, clock, clock.at)
        settle(running, clock, clock.at + 60)
        log = history(running, "cron-failing")
    assert slack.texts() == []
    assert log == [("silenced", muted), ("silenced", muted)]


def test_a_new_episode_is_announced_on_its_own_and_does_not_bring_back_the_held_back_one(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    clock = Clock(T0)
    with server(tmp_path, clock, slack_webhook_url=slack.url) as running:
        muted = backup_fails_under_silence(running, clock, "10m", monitor="backup")
        clock.at = T0 + 300
        ping(running, "backup")
        changes(running, 2)
        settle(running, clock, clock.at)
        clock.at = T0 + 900  # the silence is over: the second episode is announced at once
        ping(running, "backup", "fail")
        changes(running, 3)
        settle(running, clock, clock.at)
        settle(running, clock, clock.at + 60)
        log = history(running, "cron-failing")
    [text] = slack.texts()
    assert "Cron Job Failure" in text
    assert log == [("silenced", muted), ("silenced", muted), ("sent", None)]


def test_it_sends_a_held_back_new_issue_once_from_a_reopened_server_when_its_silence_is_expired_by_hand(
    tmp_path: Path, slack: SlackReceiver, state_url: str
) -> None:
    clock = Clock(T0)
    settings = {"slack_webhook_url": slack.url, "database_url": state_url}
    with server(tmp_path, clock, **settings) as first:
        muted = silence(first, "2h", rule="issue-new")
        assert post_native(first, [crash("card declined at checkout")]).status_code == 200
        settle(first, clock, T0 + 1)
        assert slack.texts() == []
        clock.at = T0 + 600
        api(first, "POST", f"/silences/{muted}/expire")
        dispatcher = rules_for(first.ctx).dispatcher
        assert dispatcher.follow_up(clock.at) == 1  # handed back to the outbox; the server stops now
        assert history(first, "issue-new") == [("released", muted)]
    assert slack.texts() == []
    clock.at = T0 + 700
    with server(tmp_path, clock, **settings) as second:
        settle(second, clock, clock.at)
        settle(second, clock, clock.at + 60)
        log = history(second, "issue-new")
    clock.at = T0 + 800
    with server(tmp_path, clock, **settings) as third:
        settle(third, clock, clock.at)
    [text] = slack.texts()
    assert text.startswith("🚨 New issue") and "card declined at checkout" in text
    assert log == [("released", muted), ("sent", None)]


def test_it_does_not_send_a_held_back_new_issue_resolved_before_its_silence_ended(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    clock = Clock(T0)
    with server(tmp_path, clock, slack_webhook_url=slack.url) as running:
        muted = silence(running, "30m", rule="issue-new")
        post_native(running, [crash("card declined")])
        post_native(running, [crash("ledger offline")])
        settle(running, clock, T0 + 1)
        [resolved, _] = api(running, "GET", "/issues", params={"status": "all"})["items"]
        clock.at = T0 + 120
        api(running, "POST", f"/issues/{resolved['id']}/resolve")
        clock.at = T0 + 1801
        settle(running, clock, clock.at)
        settle(running, clock, clock.at + 60)
        log = history(running, "issue-new")
    [text] = slack.texts()
    assert text.startswith("🚨 New issue") and resolved["title"] not in text
    assert sorted(log) == [("released", muted), ("sent", None), ("silenced", muted)]


def test_it_does_not_send_a_held_back_new_issue_once_the_rules_window_has_passed(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    clock = Clock(T0)
    with server(tmp_path, clock, slack_webhook_url=slack.url) as running:
        muted = silence(running, "2h", rule="issue-new")  # longer than the rule's window (1h)
        post_native(running, [crash("card declined")])
        settle(running, clock, T0 + 1)
        clock.at = T0 + 7201
        settle(running, clock, clock.at)
        log = history(running, "issue-new")
    assert slack.texts() == []
    assert log == [("silenced", muted)]


def test_a_handed_back_message_that_a_new_silence_matches_waits_for_that_silence_too(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    clock = Clock(T0)
    with server(tmp_path, clock, slack_webhook_url=slack.url) as running:
        api(running, "POST", "/monitors", json={"slug": "backup", "config": {"schedule": "0 2 * * *"}})
        first = silence(running, "10m", rule="cron-failing")
        ping(running, "backup", "fail")
        changes(running, 1)
        settle(running, clock, T0 + 1)
        clock.at = T0 + 601
        assert rules_for(running.ctx).dispatcher.follow_up(clock.at) == 1  # handed back to the outbox
        second = silence(running, "10m", monitor="backup")  # made before the outbox sends it
        settle(running, clock, clock.at)
        assert slack.texts() == []
        clock.at = T0 + 1202
        settle(running, clock, clock.at)
        settle(running, clock, clock.at + 60)
        log = history(running, "cron-failing")
    [text] = slack.texts()
    assert "Cron Job Failure" in text and "backup" in text
    assert log == [("released", first), ("released", second), ("sent", None)]


def test_it_sends_a_new_issue_held_back_by_an_inhibiting_alert_once_that_alert_resolves(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rules]]\nname = "maintenance"\nsignal = "count"\nwhere = "operation = \'maintenance.window\'"\n'
        'window = "10m"\ncritical = "> 0"\ninhibits = { matchers = ["rule=~issue-.*"] }\n'
    )
    clock = Clock(T0)
    with server(tmp_path, clock, slack_webhook_url=slack.url, rules_file=rules) as running:
        post_native(running, [donation(operation="maintenance.window", timestamp=format_timestamp(T0 - 60))])
        service = rules_for(running.ctx).service
        service.run_once(T0)
        assert {alert.status for alert in service.state.instances("maintenance").values()} == {"firing"}
        post_native(running, [crash("card declined during maintenance")])
        settle(running, clock, T0 + 1)
        settle(running, clock, T0 + 300)  # still inhibited
        assert [text for text in slack.texts() if "New issue" in text] == []
        clock.at = T0 + 700
        service.run_once(clock.at)  # the maintenance window's event is out of the window: resolved
        assert {alert.status for alert in service.state.instances("maintenance").values()} == {"inactive"}
        settle(running, clock, clock.at)
        settle(running, clock, clock.at + 60)
        log = history(running, "issue-new")
    [text] = [text for text in slack.texts() if "New issue" in text]
    assert "card declined during maintenance" in text
    assert log == [("released", None), ("sent", None)]


def test_it_sends_a_held_back_regression_while_the_issue_is_still_regressed(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    clock = Clock(T0)
    with server(tmp_path, clock, slack_webhook_url=slack.url) as running:
        post_native(running, [crash("card declined")])
        settle(running, clock, T0 + 1)
        [issue] = api(running, "GET", "/issues", params={"status": "all"})["items"]
        clock.at = T0 + 60
        api(running, "POST", f"/issues/{issue['id']}/resolve")
        muted = silence(running, "15m", rule="issue-regressed", regression="1")
        clock.at = T0 + 120
        post_native(running, [crash("card declined")])
        settle(running, clock, clock.at)
        assert [text.splitlines()[0] for text in slack.texts()] == ["🚨 New issue"]
        clock.at = T0 + 1021
        settle(running, clock, clock.at)
        settle(running, clock, clock.at + 60)
        log = history(running, "issue-regressed")
    assert [text.splitlines()[0] for text in slack.texts()] == ["🚨 New issue", "🚨 Regressed issue"]
    assert "Regressions: 1" in slack.texts()[1]
    assert log == [("released", muted), ("sent", None)]


def test_a_recovery_right_after_the_silence_ended_is_not_sent_for_a_failure_never_announced(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    clock = Clock(T0)
    with server(tmp_path, clock, slack_webhook_url=slack.url) as running:
        muted = backup_fails_under_silence(running, clock, "10m")
        clock.at = T0 + 605  # the silence ended; the monitor recovers before any follow-up ran
        ping(running, "backup")
        changes(running, 2)
        worker(running, "CronClock").outbox.drain(clock.at)
        settle(running, clock, clock.at)
        settle(running, clock, clock.at + 60)
        log = history(running, "cron-failing")
    assert slack.texts() == []
    assert log == [("silenced", muted), ("unannounced", None)]


FOR_RULES = """
[[rules]]
name = "cron-failing"
signal = "monitor_failing"
window = "1m"
for = "5m"

[[rules]]
name = "issue-new"
signal = "issue_new"
window = "1h"
for = "10m"
"""


def test_a_notice_rules_for_sends_only_what_still_fires_when_it_has_passed(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    (tmp_path / "rules.toml").write_text(FOR_RULES)
    clock = Clock(T0)
    with server(tmp_path, clock, slack_webhook_url=slack.url, rules_file=tmp_path / "rules.toml") as running:
        for slug in ("backup", "reports"):
            api(running, "POST", "/monitors", json={"slug": slug, "config": {"schedule": "0 2 * * *"}})
            ping(running, slug, "fail")
        changes(running, 2)
        post_native(running, [crash("card declined")])
        post_native(running, [crash("ledger offline")])
        settle(running, clock, T0 + 1)
        [resolved, _] = api(running, "GET", "/issues", params={"status": "all"})["items"]
        clock.at = T0 + 120
        ping(running, "reports")  # recovered within for: neither its failure nor its recovery is sent
        changes(running, 3)
        api(running, "POST", f"/issues/{resolved['id']}/resolve")  # resolved within for
        settle(running, clock, clock.at)
        settle(running, clock, T0 + 299)
        assert slack.texts() == []
        settle(running, clock, T0 + 301)  # the cron rule's for has passed
        assert [text.splitlines()[0] for text in slack.texts()] == ["🔥 Cron Job Failure"]
        settle(running, clock, T0 + 599)
        settle(running, clock, T0 + 601)  # the issue rule's for has passed
        settle(running, clock, T0 + 1200)
        cron_log = history(running, "cron-failing")
        issue_log = history(running, "issue-new")
    texts = slack.texts()
    assert [text.splitlines()[0] for text in texts] == ["🔥 Cron Job Failure", "🚨 New issue"]
    assert "backup" in texts[0] and resolved["title"] not in texts[1]
    assert sorted(cron_log) == [("deferred", None), ("released", None), ("sent", None), ("unannounced", None)]
    assert sorted(issue_log) == [("deferred", None), ("released", None), ("sent", None)]
