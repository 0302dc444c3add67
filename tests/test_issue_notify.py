"""Messages for new and regressed issues, delivered by the real notifier to a local Slack stand-in."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest

from opswatch.alerts.channels.slack import SlackChannel
from opswatch.alerts.delivery import Notifier
from opswatch.record import format_timestamp, serialize_exception
from opswatch.server.issues import IssueHook, IssueService, IssueSettings
from opswatch.server.issues.service import install_tables
from opswatch.server.state.base import create_engine_for
from slack_receiver import SlackReceiver

NOW = datetime.datetime(2025, 11, 2, 9, 0, tzinfo=datetime.UTC)


class PaymentError(Exception):
    pass


def charge_card(donation_id: int) -> None:
    raise PaymentError(f"Payment failed for donation {donation_id}")


class Server:
    """What the hook needs of a server context: a notifier."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier


_ids = iter(range(1, 10**9))


def occurrence(**fields: Any) -> dict[str, Any]:
    try:
        charge_card(next(_ids))
    except PaymentError as err:
        error = serialize_exception(err)
    return {
        "event_id": f"{next(_ids):032x}",
        "timestamp": format_timestamp(fields.pop("at", NOW).timestamp()),
        "level": "error",
        "message": "payment failed",
        "operation": "payment.stripe.charge",
        "environment": "production",
        "release": "2.4.1",
        "project_id": 1,
        "kind": "error",
        "error": error,
        **fields,
    }


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture
def service(state_url: str) -> Iterator[IssueService]:
    engine = create_engine_for(state_url)
    install_tables(engine)
    yield IssueService(engine, now=lambda: NOW)
    engine.dispose()


@pytest.fixture
def notifier(slack: SlackReceiver) -> Iterator[Notifier]:
    notifier = Notifier([SlackChannel(slack.url)], burst=10)
    yield notifier
    notifier.close(timeout=5)


def test_it_sends_one_message_for_a_new_issue_with_a_link(
    service: IssueService, notifier: Notifier, slack: SlackReceiver
) -> None:
    hook = IssueHook(service, IssueSettings(), "http://ops.example.org/")
    hook(Server(notifier), [occurrence(), occurrence()])
    hook(Server(notifier), [occurrence()])
    assert notifier.flush(10)
    [message] = slack.wait_for(1)
    issue_id = service.list_issues().items[0]["id"]
    assert message["text"].startswith("🚨 New issue")
    assert "PaymentError: Payment failed for donation" in message["text"]
    assert "Operation: payment.stripe.charge" in message["text"]
    buttons = [b for b in message["blocks"] if b["type"] == "actions"]
    assert buttons[0]["elements"][0]["url"] == f"http://ops.example.org/issues/{issue_id}"


def test_it_sends_one_message_per_regression(
    service: IssueService, notifier: Notifier, slack: SlackReceiver
) -> None:
    hook = IssueHook(service, IssueSettings(notify_new=False), "http://ops.example.org")
    hook(Server(notifier), [occurrence()])
    issue_id = service.list_issues().items[0]["id"]
    service.resolve(issue_id, actor="ann")
    hook(Server(notifier), [occurrence(at=NOW + datetime.timedelta(seconds=1))])
    hook(Server(notifier), [occurrence(at=NOW + datetime.timedelta(seconds=2))])
    service.resolve(issue_id, actor="ann")
    hook(Server(notifier), [occurrence(at=NOW + datetime.timedelta(seconds=3), release="2.4.2")])
    assert notifier.flush(10)
    texts = [t.splitlines()[0] for t in slack.texts()]
    assert texts == ["🚨 Regressed issue", "🚨 Regressed issue"]
    assert "Regressions: 2" in slack.texts()[1]
    assert "Release: 2.4.2" in slack.texts()[1]


def test_it_sends_nothing_for_changes_that_are_switched_off(
    service: IssueService, notifier: Notifier, slack: SlackReceiver
) -> None:
    hook = IssueHook(service, IssueSettings(notify_new=False, notify_regressed=False), "http://x")
    hook(Server(notifier), [occurrence()])
    service.resolve(service.list_issues().items[0]["id"], actor="ann")
    hook(Server(notifier), [occurrence(at=NOW + datetime.timedelta(seconds=1))])
    assert notifier.flush(10)
    assert slack.messages == []


def test_it_marks_a_fatal_issue_critical(
    service: IssueService, notifier: Notifier, slack: SlackReceiver
) -> None:
    IssueHook(service, IssueSettings(), "http://x")(Server(notifier), [occurrence(level="fatal")])
    assert notifier.flush(10)
    [message] = slack.wait_for(1)
    assert message["text"].startswith("🔥 New issue")
