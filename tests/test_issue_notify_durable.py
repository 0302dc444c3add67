"""New-issue messages are durable: written with the issue, sent even if the server dies before Slack.

The message is a row of the notice outbox (``issue_notices``), committed in the issue's transaction and
claimed with a conditional update (the mechanism cron monitors use, ``opswatch.server.outbox``).
"""

from __future__ import annotations

import datetime
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest_helpers import donation, post_native
from opswatch.alerts import Notifier, RetryPolicy, SlackChannel
from opswatch.server import limits
from opswatch.server.issues import IssueService
from opswatch.server.issues.notify import IssueNotices
from opswatch.server.issues.service import install_tables
from opswatch.server.state.base import create_engine_for
from opswatch.server.state.notices import ISSUE_NOTICES
from opswatch.server.testing import running_server
from slack_receiver import SlackReceiver

START = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)


class Clock:
    def __init__(self, now: datetime.datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


def nobody_listening() -> str:
    """A webhook URL on a port nothing listens on: every attempt fails (a Slack outage)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/T000/B000/XXXX"


def crash(message: str) -> dict[str, object]:
    return donation(level="error", kind="error", message=message, error={"type": "PaymentError", "message": message})


def test_it_sends_a_new_issues_message_after_a_restart_when_the_first_server_never_delivered_it(
    tmp_path: Path, state_url: str, slack: SlackReceiver
) -> None:
    # The first server's Slack is down and it stops while the message waits for a retry.
    down = Notifier(
        [SlackChannel(nobody_listening(), timeout=0.5)],
        retry=RetryPolicy(max_attempts=5, initial=60.0, maximum=60.0),
    )
    with running_server(tmp_path, now=Clock(), notifier=down, database_url=state_url) as first:
        assert post_native(first, [crash("card declined at checkout")]).status_code == 200
        with first.ctx.engine.connect() as conn:
            [notice] = list(conn.execute(select(ISSUE_NOTICES)))
        assert notice.kind == "new" and notice.claimed_at is not None and notice.notified_at is None
    assert slack.messages == []
    # The same data directory, Slack back, after the first server's claim ran out.
    later = Clock(START + datetime.timedelta(seconds=limits.ISSUE_NOTICE_LEASE_SECONDS + 1))
    up = Notifier([SlackChannel(slack.url)])
    with running_server(tmp_path, now=later, notifier=up, database_url=state_url):
        [message] = slack.wait_for(1)
    assert message["text"].startswith("🚨 New issue")
    assert "PaymentError: card declined at checkout" in message["text"]


def test_it_waits_for_the_lease_of_a_live_claim_before_sending_again(tmp_path: Path, slack: SlackReceiver) -> None:
    down = Notifier(
        [SlackChannel(nobody_listening(), timeout=0.5)],
        retry=RetryPolicy(max_attempts=5, initial=60.0, maximum=60.0),
    )
    with running_server(tmp_path, now=Clock(), notifier=down) as first:
        post_native(first, [crash("card declined")])
    almost = Clock(START + datetime.timedelta(seconds=limits.ISSUE_NOTICE_LEASE_SECONDS - 1))
    up = Notifier([SlackChannel(slack.url)])
    with running_server(tmp_path, now=almost, notifier=up) as second:
        sweeper = next(b for b in second.ctx.background if type(b).__name__ == "IssueSweeper")
        sweeper.run_once()
        assert up.flush(30)
    assert slack.messages == []


def test_it_sends_each_notice_once_when_two_servers_drain_the_same_database(
    state_url: str, slack: SlackReceiver
) -> None:
    engine = create_engine_for(state_url)
    install_tables(engine)
    service = IssueService(engine, now=Clock())
    service.record(
        [{**crash(f"error {i}"), "project_id": 1, "error": {"type": f"Error{i}", "message": "x"}} for i in range(20)],
        notify=("new",),
    )
    notifiers = [Notifier([SlackChannel(slack.url)], burst=50) for _ in range(2)]
    servers = [IssueNotices(engine, "http://ops.example.org") for _ in range(2)]
    now = START.timestamp()
    threads = [
        threading.Thread(target=server.drain, args=(notifier, now))
        for server, notifier in zip(servers, notifiers, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for notifier in notifiers:
        assert notifier.flush(10)
        notifier.close(5)
    engine.dispose()
    assert len(slack.wait_for(20)) == 20
    assert len({text.split("\n")[2] for text in slack.texts()}) == 20
