"""Sentry log records from the real ``sentry-sdk`` with its default integrations and ``enable_logs``.

With those settings one stdlib ``logging.error`` call sends two things: an error event (the logging
integration's) and a Sentry log record. Sentry makes an issue of the event only; so does opswatch. The
log record is kept as a log, with its template and its parameters under names that mean something.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk

from ingest_helpers import http, issues, stored
from opswatch.server.testing import RunningServer, running_server

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        yield running


@pytest.fixture
def sentry_with_defaults(server: RunningServer) -> Iterator[None]:
    """sentry-sdk as an app sets it up: default integrations (logging among them) and logs on."""
    sentry_sdk.init(
        dsn=server.dsn,
        release="ledger@2.0.1",
        environment="production",
        auto_session_tracking=False,
        send_client_reports=False,
        enable_logs=True,  # the option's name in sentry-sdk >= 2.35 (``_experiments`` before)
    )
    yield
    client = sentry_sdk.get_client()
    client.flush(timeout=30)
    client.close(timeout=5)
    sentry_sdk.get_global_scope().set_client(None)


def issues_mentioning(server: RunningServer, text: str) -> list[dict[str, Any]]:
    return [issue for issue in issues(server) if text in issue["title"]]


def sentry_logs(server: RunningServer) -> list[dict[str, Any]]:
    return [r for r in stored(server) if r.get("kind") == "log" and r.get("source") == "sentry"]


def test_it_opens_one_issue_per_logging_error_call(server: RunningServer, sentry_with_defaults: None) -> None:
    ledger = logging.getLogger("ledger")
    ledger.error("Ledger sync failed for account acct-1")
    ledger.error("Receipt mailer is down")
    sentry_sdk.flush(timeout=30)  # the server answers after its issue hook saw the events

    logs = {r["message"]: r for r in sentry_logs(server)}
    # Both calls did send a log record as well as the event: the case the rule is for.
    assert logs["Ledger sync failed for account acct-1"]["level"] == "error"
    assert logs["Receipt mailer is down"]["level"] == "error"
    for text in ("Ledger sync failed for account acct-1", "Receipt mailer is down"):
        [issue] = issues_mentioning(server, text)
        assert issue["count"] == 1


def test_it_names_positional_template_parameters_as_sentry_does(
    server: RunningServer, sentry_with_defaults: None
) -> None:
    logging.getLogger("ledger").warning("Charged %s for %d seats", "acct-7", 3)
    sentry_sdk.flush(timeout=30)

    [record] = [r for r in sentry_logs(server) if r["message"] == "Charged acct-7 for 3 seats"]
    assert record["message_template"] == "Charged %s for %d seats"
    assert record["sentry.message.parameter.0"] == "acct-7"
    assert record["sentry.message.parameter.1"] == 3
    assert "0" not in record and "1" not in record
    assert record["logger"] == "ledger"
    sql = 'SELECT "sentry.message.parameter.0" AS account FROM logs WHERE message_template = \'Charged %s for %d seats\''
    answer = http().post(f"{server.url}/api/0/query", json={"sql": sql}, headers=server.admin_headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == [["acct-7"]]


def test_it_stores_named_template_parameters_under_their_names(
    server: RunningServer, sentry_with_defaults: None
) -> None:
    sentry_sdk.logger.info("Order {order_id} shipped", order_id=42)
    sentry_sdk.flush(timeout=30)

    [record] = [r for r in sentry_logs(server) if r["message"] == "Order 42 shipped"]
    assert record["order_id"] == 42
    assert record["message_template"] == "Order {order_id} shipped"
    assert "sentry.message.parameter.order_id" not in record
