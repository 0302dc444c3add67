"""The cron failure message says what failed, as the seed's ``cronJobFailed(jobName, error)`` does.

A real server (real time) tells a local Slack stand-in when a monitor starts failing. When the run's job
reported an exception, from the opswatch SDK (``cron.<slug>.error`` with the run's id) or from the real
``sentry-sdk`` (an error event in the check-in's trace, sent after the check-in), the message carries its
type and message and links to the issue that error opened. A ping's ``/fail`` has no error to tell.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sentry_sdk
from sentry_sdk.crons import capture_checkin, monitor

import opswatch
from ingest_helpers import issues
from opswatch.server.testing import RunningServer, running_server
from slack_receiver import SlackReceiver

pytestmark = pytest.mark.slow


class CardDeclined(Exception):
    """The payment provider said no."""


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture
def server(tmp_path: Path, slack: SlackReceiver, state_url: str) -> Iterator[RunningServer]:
    """A server on a SQLite state store and on PostgreSQL (monitors and their outbox live there)."""
    with running_server(
        tmp_path, slack_webhook_url=slack.url, database_url=state_url, leader_election="off"
    ) as running:
        yield running


def issue_titled(server: RunningServer, title: str) -> dict[str, Any]:
    [issue] = [item for item in issues(server) if item["title"].endswith(title)]
    return issue


def failing_message(slack: SlackReceiver, expected_messages: int) -> str:
    """The one cron failure message, once ``expected_messages`` arrived (new-issue messages go too)."""
    slack.wait_for(expected_messages, timeout=60)
    failures = [text for text in slack.texts() if "Cron Job Failure" in text]
    assert len(failures) == 1, slack.texts()
    return failures[0]


def charge_donations() -> None:
    raise CardDeclined("card declined for donor 7")


def test_it_tells_the_error_the_sdks_job_raised_and_links_its_issue(
    server: RunningServer, slack: SlackReceiver
) -> None:
    opswatch.init(dsn=server.dsn, console=False, capture_stdlib=False)
    with pytest.raises(CardDeclined):
        opswatch.execute_cron_job("charge-donations", charge_donations, schedule="0 3 * * *")
    assert opswatch.flush(10)

    text = failing_message(slack, 2)
    assert "charge-donations" in text
    assert "CardDeclined: card declined for donor 7" in text
    issue = issue_titled(server, "CardDeclined: card declined for donor 7")
    assert f"View issue: {server.url}/issues/{issue['id']}" in text
    assert "Reason: error" in text and "sent no error" not in text


def test_it_tells_the_error_a_sentry_job_sent_after_its_check_in(
    server: RunningServer, slack: SlackReceiver
) -> None:
    sentry_sdk.init(
        dsn=server.dsn,
        release="jobs@1.0.0",
        environment="production",
        auto_session_tracking=False,
        send_client_reports=False,
        default_integrations=False,
    )
    config: Any = {"schedule": {"type": "crontab", "value": "0 4 * * *"}}

    @monitor(monitor_slug="sync-ledger", monitor_config=config)
    def sync_ledger() -> None:
        raise LookupError("no ledger entry for jane.doe@example.com")

    try:
        sync_ledger()
    except LookupError as err:  # the check-in went first; the error event follows, as in a real app
        sentry_sdk.capture_exception(err)
    sentry_sdk.flush(timeout=30)

    text = failing_message(slack, 2)
    assert "sync-ledger" in text
    assert "LookupError: no ledger entry for j***@example.com" in text  # redacted on arrival
    assert "jane.doe" not in text
    issue = issue_titled(server, "LookupError: no ledger entry for j***@example.com")
    assert f"{server.url}/issues/{issue['id']}" in text


def test_it_says_only_that_the_run_failed_when_no_error_was_sent(
    server: RunningServer, slack: SlackReceiver
) -> None:
    api = {"headers": server.admin_headers, "timeout": 10, "trust_env": False}
    created = httpx.post(
        f"{server.url}/api/0/monitors", json={"slug": "backup", "config": {"schedule": "0 2 * * *"}}, **api
    )
    assert created.status_code == 201, created.text
    assert httpx.get(f"{server.url}/ping/{server.key}/backup/fail", trust_env=False).status_code == 200

    text = failing_message(slack, 1)
    assert "Error: the run reported a failure and sent no error with it" in text
    assert "/issues/" not in text


def test_it_still_tells_a_sentry_failure_whose_error_event_never_comes(
    server: RunningServer, slack: SlackReceiver
) -> None:
    sentry_sdk.init(
        dsn=server.dsn, auto_session_tracking=False, send_client_reports=False, default_integrations=False
    )
    config: Any = {"schedule": {"type": "crontab", "value": "0 5 * * *"}}
    capture_checkin(monitor_slug="rebuild-search", status="error", duration=1.5, monitor_config=config)
    sentry_sdk.flush(timeout=30)

    text = failing_message(slack, 1)  # held for the error event a while (ERROR_WAIT), then sent without
    assert "rebuild-search" in text
    assert "Error: the run reported a failure and sent no error with it" in text
