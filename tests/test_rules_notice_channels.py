"""The notice rules' ``channels`` apply: a rules file that sends ``cron-failing`` to email only gets
the cron message by email and not in Slack, and ``issue-new`` to Slack only gets no email. A real
server, a local Slack stand-in, a real SMTP server with STARTTLS, an injected clock, the background
clocks stopped."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from ingest_helpers import donation, post_native
from opswatch.server.rules import rules_for
from opswatch.server.state.monitors import CHANGES
from opswatch.server.testing import RunningServer, running_server
from slack_receiver import SlackReceiver
from smtp_receiver import SmtpReceiver

T0 = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)
RULES = """
[[rules]]
name = "cron-failing"
signal = "monitor_failing"
window = "1m"
channels = ["email"]

[[rules]]
name = "issue-new"
signal = "issue_new"
window = "1h"
channels = ["slack"]
"""


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


def stopped(running: RunningServer) -> RunningServer:
    for worker in running.ctx.background:
        worker.stop()
    return running


def notify_changes(running: RunningServer, wanted: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with running.ctx.engine.connect() as conn:
            if len(list(conn.execute(select(CHANGES.c.id).where(CHANGES.c.notify.is_not(None))))) >= wanted:
                return
        time.sleep(0.02)
    raise AssertionError("the monitor did not write its change")


def test_the_notice_rules_send_to_their_rules_channels_only(tmp_path: Path, slack: SlackReceiver) -> None:
    (tmp_path / "rules.toml").write_text(RULES)
    at = T0.timestamp()
    with SmtpReceiver(tmp_path) as smtp:
        settings = {
            "rules_file": tmp_path / "rules.toml",
            "slack_webhook_url": slack.url,
            "smtp_url": smtp.url(),
            "smtp_ca_file": smtp.ca_file,
            "email_from": "opswatch@example.org",
            "email_to": ["ops@example.org"],
            "leader_election": "off",
        }
        with running_server(tmp_path, now=lambda: T0, rule_clock=False, **settings) as started:
            running = stopped(started)
            headers = running.admin_headers
            created = httpx.post(
                f"{running.url}/api/0/monitors",
                json={"slug": "backup", "config": {"schedule": "0 2 * * *"}},
                headers=headers,
                trust_env=False,
            )
            assert created.status_code < 300, created.text
            assert (
                httpx.get(f"{running.url}/ping/{running.key}/backup/fail", trust_env=False).status_code == 200
            )
            notify_changes(running, 1)
            cron = next(w for w in running.ctx.background if type(w).__name__ == "CronClock")
            assert cron.outbox.drain(at).notified == 1
            error = {"type": "PaymentError", "message": "card declined"}
            post_native(
                running, [donation(level="error", kind="error", message="card declined", error=error)]
            )
            rules_for(running.ctx).dispatcher.drain(at)
            assert running.ctx.notifier.flush(10)
            smtp.wait_for(1)
            texts = slack.texts()
    [mail] = smtp.messages  # delivered (flushed) before: a second message would be here too
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Cron Job Failure" in mail["Subject"] and "Job: backup" in body, (mail["Subject"], body)
    assert len(texts) == 1 and texts[0].startswith("🚨 New issue"), texts
