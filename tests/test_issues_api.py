"""``/api/0/issues`` against a real server: errors from the real sentry-sdk, the opswatch SDK and native
batches become issues; the lifecycle works over HTTP; Slack (a local stand-in) hears of new and regressed
issues with a link."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sentry_sdk
from sentry_sdk.integrations.dedupe import DedupeIntegration

import opswatch
from opswatch.record import format_timestamp, serialize_exception
from opswatch.server.testing import RunningServer, running_server
from slack_receiver import SlackReceiver
from state_databases import ENGINES, state_url

pytestmark = pytest.mark.slow

_ids = itertools.count(1)


# -- the cast: the donations service and its failures ----------------------------------------------------


class PaymentError(Exception):
    pass


def charge_card(donation_id: int) -> None:
    raise PaymentError(f"Payment failed for donation {donation_id}")


def sync_ledger(entry: str) -> None:
    raise KeyError(entry)


def send_receipt(donation_id: int) -> None:
    raise TimeoutError(f"receipt mailer timed out for donation {donation_id}")


def refund(donation_id: int) -> None:
    raise PaymentError(f"Refund failed for donation {donation_id}")


def archive(batch: int) -> None:
    raise RuntimeError(f"archive batch {batch} failed")


def reconcile(account: str) -> None:
    raise LookupError(f"no ledger entry for {account}")


def caught(fn: Any, *args: Any) -> BaseException:
    try:
        fn(*args)
    except Exception as err:
        return err
    raise AssertionError("did not raise")


def native_error(fn: Any, *args: Any, **fields: Any) -> dict[str, Any]:
    """An error record as the opswatch SDK ships it."""
    return {
        "event_id": f"{next(_ids) + 10**9:032x}",
        "timestamp": format_timestamp(time.time()),
        "level": "error",
        "logger": "donations",
        "message": "donation step failed",
        "service": "donations-api",
        "environment": "production",
        "release": "2.4.1",
        "operation": "donations.step",
        "error": serialize_exception(caught(fn, *args)),
        **fields,
    }


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module", params=ENGINES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One server for the module, its state on SQLite and again on PostgreSQL (``state_databases``)."""
    directory = tmp_path_factory.mktemp("issues")
    for database_url in state_url(request.param, directory):
        with running_server(directory, database_url=database_url) as running:
            yield running


@pytest.fixture
def announcing(tmp_path: Path, slack: SlackReceiver) -> Iterator[RunningServer]:
    """A server of its own that tells Slack: its messages are not folded with other tests' issues."""
    slack.messages.clear()
    with running_server(tmp_path, slack_webhook_url=slack.url) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, trust_env=False) as client:
        yield client


@pytest.fixture
def sentry(server: RunningServer) -> Iterator[None]:
    """The real sentry-sdk pointed at the server (DSN http://key@127.0.0.1:PORT/1)."""
    sentry_sdk.init(
        dsn=server.dsn,
        release="2.4.1",
        environment="production",
        auto_session_tracking=False,
        send_client_reports=False,
        default_integrations=False,  # no global patches (http.client, excepthook) leaking into other tests
        integrations=[DedupeIntegration()],  # but the one that matters here: it drops a re-sent exception
    )
    yield
    client = sentry_sdk.get_client()
    client.flush(timeout=30)
    client.close(timeout=5)
    sentry_sdk.get_global_scope().set_client(None)


def send(server: RunningServer, http: httpx.Client, *records: dict[str, Any]) -> None:
    answer = http.post(
        f"{server.url}/api/{server.project_id}/events/",
        content=b"".join(orjson.dumps(r) + b"\n" for r in records),
        headers={"Authorization": f"Bearer {server.key}"},
    )
    assert answer.status_code == 200, answer.text


def api(server: RunningServer, http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    answer = http.request(method, f"{server.url}/api/0/issues{path}", headers=server.admin_headers, **kwargs)
    assert answer.status_code == 200, answer.text
    return answer.json()


def issues_titled(
    server: RunningServer, http: httpx.Client, text: str, **params: Any
) -> list[dict[str, Any]]:
    page = api(server, http, "GET", "", params={"status": "all", "limit": 500, **params})
    return [issue for issue in page["items"] if text in issue["title"]]


def wait_for_issue(server: RunningServer, http: httpx.Client, text: str, count: int) -> dict[str, Any]:
    """The issue titled ``text`` once it counted ``count`` events (sentry-sdk sends from a thread)."""
    deadline = time.monotonic() + 60
    while True:
        found = issues_titled(server, http, text)
        if (found and found[0]["count"] >= count) or time.monotonic() > deadline:
            assert found, f"no issue titled {text!r}"
            return found[0]


# -- grouping what real clients send -----------------------------------------------------------------------


def test_it_groups_errors_from_the_sentry_sdk(
    server: RunningServer, http: httpx.Client, sentry: None
) -> None:
    for donation_id in (123, 456):  # two exception objects: the Dedupe integration keeps both
        sentry_sdk.capture_exception(caught(charge_card, donation_id))
    sentry_sdk.capture_exception(caught(sync_ledger, "acct-9"))
    sentry_sdk.capture_message("Webhook signature invalid for event 81723", level="error")
    sentry_sdk.capture_message("Webhook signature invalid for event 99114", level="error")
    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = ["{{ default }}", "tenant-b"]
        sentry_sdk.capture_exception(caught(charge_card, 789))
    sentry_sdk.flush(timeout=30)

    payment = wait_for_issue(server, http, "PaymentError: Payment failed for donation 123", 2)
    assert payment["count"] == 2
    assert payment["culprit"].endswith(" in charge_card")
    assert payment["grouping"]["method"] == "stack"
    assert payment["last_release"] == "2.4.1"
    ledger = wait_for_issue(server, http, "KeyError: 'acct-9'", 1)
    assert ledger["id"] != payment["id"]
    webhook = wait_for_issue(server, http, "Webhook signature invalid", 2)
    assert webhook["count"] == 2 and webhook["grouping"]["method"] == "message"
    tenant = wait_for_issue(server, http, "Payment failed for donation 789", 1)
    assert tenant["id"] != payment["id"] and tenant["grouping"]["method"] == "fingerprint"

    detail = api(server, http, "GET", f"/{payment['id']}")
    assert [e["value"] for e in detail["environments"]] == ["production"]
    assert detail["latest_event"]["error"]["type"].endswith("PaymentError")
    assert sum(detail["counts_24h"]) == 2


def test_it_groups_errors_from_the_opswatch_sdk(server: RunningServer, http: httpx.Client) -> None:
    opswatch.init(dsn=server.dsn, console=False, release="3.0.0", environment="staging", service="donations")
    log = opswatch.get_logger("donations")
    for donation_id in (1001, 1002, 1003):
        log.error(
            "Receipt could not be sent", {"operation": "email.receipt"}, caught(send_receipt, donation_id)
        )
    assert opswatch.flush(10)
    issue = wait_for_issue(server, http, "TimeoutError: receipt mailer timed out", 3)
    assert issue["count"] == 3
    assert issue["operation"] == "email.receipt"
    assert issue["culprit"].endswith(" in send_receipt")
    detail = api(server, http, "GET", f"/{issue['id']}")
    assert [r["value"] for r in detail["releases"]] == ["3.0.0"]
    assert [o["value"] for o in detail["operations"]] == ["email.receipt"]


# -- the lifecycle over HTTP, and Slack --------------------------------------------------------------------


def test_it_announces_new_and_regressed_issues_in_slack_with_a_link(
    announcing: RunningServer, http: httpx.Client, slack: SlackReceiver
) -> None:
    server = announcing
    send(server, http, native_error(archive, 1), native_error(archive, 2))
    send(server, http, native_error(archive, 3))
    issue = wait_for_issue(server, http, "RuntimeError: archive batch", 3)
    assert server.ctx.notifier is not None and server.ctx.notifier.flush(10)
    [message] = slack.wait_for(1)
    assert message["text"].splitlines()[0] == "🚨 New issue"
    assert "RuntimeError: archive batch 1 failed" in message["text"]
    [button] = [b for b in message["blocks"] if b["type"] == "actions"]
    assert button["elements"][0]["url"] == f"{server.url}/issues/{issue['id']}"

    api(server, http, "POST", f"/{issue['id']}/resolve")
    send(server, http, native_error(archive, 4), native_error(archive, 5))
    assert server.ctx.notifier.flush(10)
    _new, regressed = slack.wait_for(2)
    assert regressed["text"].splitlines()[0] == "🚨 Regressed issue"
    assert len(slack.messages) == 2


def test_it_resolves_regresses_ignores_and_reopens(server: RunningServer, http: httpx.Client) -> None:
    send(server, http, native_error(refund, 5))
    issue = wait_for_issue(server, http, "Refund failed for donation", 1)
    path = f"/{issue['id']}"

    resolved = api(server, http, "POST", f"{path}/resolve", json={"actor": "ann"})
    assert resolved["status"] == "resolved"
    assert issues_titled(server, http, "Refund failed", status="unresolved") == []

    send(server, http, native_error(refund, 6))
    assert api(server, http, "GET", path)["status"] == "regressed"

    ignored = api(server, http, "POST", f"{path}/ignore", json={"count": 2, "actor": "bob"})
    assert ignored["status"] == "ignored" and ignored["ignore_until_count"] == 4
    send(server, http, native_error(refund, 7))
    assert api(server, http, "GET", path)["status"] == "ignored"
    send(server, http, native_error(refund, 8))
    assert api(server, http, "GET", path)["status"] == "unresolved"

    api(server, http, "POST", f"{path}/ignore", json={"duration": 3600})
    reopened = api(server, http, "POST", f"{path}/reopen")
    assert reopened["status"] == "unresolved"
    assert [(a["kind"], a["actor"]) for a in reopened["activity"]] == [
        ("created", "system:ingest"),
        ("resolved", "ann"),
        ("regressed", "system:ingest"),
        ("ignored", "bob"),
        ("unignored", "system:ignore-count-reached"),
        ("ignored", "admin"),
        ("reopened", "admin"),
    ]


def test_it_lists_the_events_of_an_issue_page_by_page(server: RunningServer, http: httpx.Client) -> None:
    records = [native_error(reconcile, f"acct-{n}", message=f"ledger step {n}") for n in range(5)]
    send(server, http, *records)
    issue = wait_for_issue(server, http, "LookupError: no ledger entry", 5)
    first = api(server, http, "GET", f"/{issue['id']}/events", params={"limit": 3})
    second = api(
        server, http, "GET", f"/{issue['id']}/events", params={"limit": 3, "cursor": first["next_cursor"]}
    )
    seen = [e["event_id"] for e in first["items"] + second["items"]]
    assert sorted(seen) == sorted(r["event_id"] for r in records)
    assert second["next_cursor"] is None
    assert {e["message"] for e in first["items"]} <= {f"ledger step {n}" for n in range(5)}


def test_it_does_not_count_a_retried_batch_twice(server: RunningServer, http: httpx.Client) -> None:
    record = native_error(charge_card, 31337, operation="payment.retry-test", fingerprint=["retry-test"])
    send(server, http, record)
    send(server, http, record)
    [issue] = [i for i in issues_titled(server, http, "donation 31337")]
    assert issue["count"] == 1


# -- refusals ----------------------------------------------------------------------------------------------


def test_it_requires_the_admin_token(server: RunningServer, http: httpx.Client) -> None:
    assert http.get(f"{server.url}/api/0/issues").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert http.post(f"{server.url}/api/0/issues/1/resolve", headers=wrong).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("GET", "?status=open-ish", None, 400, "status"),
        ("GET", "?sort=random", None, 400, "sort"),
        ("GET", "/999999", None, 404, "no issue"),
        ("POST", "/999999/resolve", None, 404, "no issue"),
        ("POST", "/{id}/ignore", {"count": 0}, 400, "at least 1"),
        ("POST", "/{id}/ignore", {"until": "yesterday"}, 400, "until"),
        ("POST", "/{id}/ignore", {"until": "2001-01-01T00:00:00Z"}, 400, "past"),
        ("POST", "/{id}/ignore", {"duration": "long"}, 400, "duration"),
        ("GET", "/{id}/events?cursor=garbage", None, 400, "cursor"),
    ],
)
def test_it_answers_bad_requests_with_a_reason(
    server: RunningServer, http: httpx.Client, method: str, path: str, body: Any, status: int, reason: str
) -> None:
    send(server, http, native_error(charge_card, 4040, fingerprint=["bad-requests"]))
    issue = wait_for_issue(server, http, "donation 4040", 1)
    answer = http.request(
        method,
        f"{server.url}/api/0/issues{path.format(id=issue['id'])}",
        headers=server.admin_headers,
        json=body,
    )
    assert answer.status_code == status
    assert reason in answer.json()["detail"]
