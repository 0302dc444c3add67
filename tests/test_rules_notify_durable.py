"""Rule notifications go through the notice outbox with a leased claim: a server killed while a message
is on its way sends it again after the lease (here: a fresh server on the same state and event files),
and a message delivered before a restart is never sent again."""

from __future__ import annotations

import contextlib
import datetime
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from opswatch.alerts import Notifier, RetryPolicy, SlackChannel
from opswatch.server import limits
from opswatch.server.rules import rules_for
from opswatch.server.state.rule_definitions import MESSAGES
from opswatch.server.testing import RunningServer, running_server
from rules_cast import T0, request
from slack_receiver import SlackReceiver

RULES = """
[[rules]]
name = "checkout-failing"
signal = "count"
where = "level = 'error'"
window = "2h"
critical = "> 2"
"""
START = T0 + 600
LEASE = limits.RULE_MESSAGE_LEASE_SECONDS


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.at, datetime.UTC)


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


def slack_down() -> Notifier:
    """A notifier whose Slack never answers: the first attempt fails, the retry waits a minute."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T000/B000/XXXX"
    return Notifier(
        [SlackChannel(url, timeout=0.5)], retry=RetryPolicy(max_attempts=5, initial=60.0, maximum=60.0)
    )


@contextlib.contextmanager
def server(tmp_path: Path, at: float, notifier: Notifier, state_url: str) -> Iterator[RunningServer]:
    """A server on the test's files at ``at``; its rule clock is stopped, so the test drives the rounds."""
    (tmp_path / "rules.toml").write_text(RULES)
    with running_server(
        tmp_path,
        now=Clock(at),
        notifier=notifier,
        rules_file=tmp_path / "rules.toml",
        rules_defaults=False,
        rules_ingest_delay=0,
        rules_group_wait=0,
        database_url=state_url,
        leader_election="off",
        rule_clock=False,  # the test drives the rounds: the clock never starts
    ) as running:
        yield running


def tick(running: RunningServer, at: float) -> None:
    """An evaluation round at ``at``, then the notification log and the outbox are drained."""
    rules = rules_for(running.ctx)
    rules.service.run_once(at)
    rules.dispatcher.drain(at)


def messages(running: RunningServer) -> list[tuple[float | None, float | None]]:
    with running.ctx.engine.connect() as conn:
        return [(row.claimed_at, row.notified_at) for row in conn.execute(select(MESSAGES))]


def fire_with_slack_down(tmp_path: Path, state_url: str) -> None:
    """The first server: the rule fires, its message is claimed and handed over, Slack never takes it."""
    with server(tmp_path, START, slack_down(), state_url) as first:
        first.ctx.store.append([request(T0 + i, level="error") for i in range(5)])
        tick(first, START)
        assert messages(first) == [(START, None)]  # claimed, not done: the server "dies" now


def test_it_sends_a_message_again_after_the_lease_when_the_first_server_stopped_before_slack_took_it(
    tmp_path: Path, state_url: str, slack: SlackReceiver
) -> None:
    fire_with_slack_down(tmp_path, state_url)
    assert slack.messages == []
    later = START + LEASE + 1
    with server(tmp_path, later, Notifier([SlackChannel(slack.url)]), state_url) as second:
        tick(second, later)
        [message] = slack.wait_for(1)
        assert "checkout-failing" in message["text"] and "Alert firing" in message["text"]
        tick(second, later + 1)  # settles the delivery (if the first round did not see it done yet)
        [(claimed, notified)] = messages(second)
        assert claimed == later and notified in (later, later + 1)
        tick(second, later + 2)
        assert len(slack.messages) == 1


def test_it_waits_for_the_lease_of_a_claim_that_may_still_be_delivering(
    tmp_path: Path, state_url: str, slack: SlackReceiver
) -> None:
    fire_with_slack_down(tmp_path, state_url)
    almost = START + LEASE - 1
    notifier = Notifier([SlackChannel(slack.url)])
    with server(tmp_path, almost, notifier, state_url) as second:
        tick(second, almost)
        assert notifier.flush(30)
        assert messages(second) == [(START, None)]
    assert slack.messages == []


def test_it_never_sends_a_delivered_message_again_after_a_restart(
    tmp_path: Path, state_url: str, slack: SlackReceiver
) -> None:
    notifier = Notifier([SlackChannel(slack.url)])
    with server(tmp_path, START, notifier, state_url) as first:
        first.ctx.store.append([request(T0 + i, level="error") for i in range(5)])
        tick(first, START)
        slack.wait_for(1)
        assert notifier.flush(30)
        tick(first, START + 1)
        assert messages(first) == [(START, START + 1)]
    later = START + 3 * LEASE
    with server(tmp_path, later, Notifier([SlackChannel(slack.url)]), state_url) as second:
        tick(second, later)
        tick(second, later + 1)
        assert messages(second) == [(START, START + 1)]
    assert len(slack.messages) == 1


def test_it_prunes_delivered_messages_past_the_retention_and_keeps_undelivered_ones(
    tmp_path: Path, state_url: str
) -> None:
    fire_with_slack_down(tmp_path, state_url)  # one message, claimed, never delivered
    with server(tmp_path, START, slack_down(), state_url) as again:
        engine = again.ctx.engine
        with engine.begin() as conn:
            conn.execute(MESSAGES.insert().values(rule="old", notes=[], created_at=T0, notified_at=T0 + 1))
        dispatcher = rules_for(again.ctx).dispatcher
        assert dispatcher.prune(START) == 1
        assert messages(again) == [(START, None)]
