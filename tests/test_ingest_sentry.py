"""Sentry ingest with the real ``sentry-sdk``: errors, messages, logs, check-ins and transactions.

The SDK is pointed at a server started by the test (DSN ``http://<key>@127.0.0.1:PORT/1``), flushed, and
what landed is read back from the store. Sessions and client reports are off, release and environment
explicit; ``NO_PROXY`` (set in conftest) keeps a proxy in the environment from eating the events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
import sentry_sdk.logger
from sentry_sdk.crons import capture_checkin

from ingest_helpers import stored, stored_by_id
from opswatch.server.testing import RunningServer, running_server


class CardDeclined(Exception):
    """The payment provider said no."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("sentry"), retention_days=36500) as running:
        yield running


@pytest.fixture
def sentry(server: RunningServer) -> Iterator[Any]:
    """The real sentry-sdk, sending to the test server; closed after the test."""

    def start(**options: Any) -> Any:
        options = {
            "dsn": server.dsn,
            "release": "donations@1.4.2",
            "environment": "staging",
            "auto_session_tracking": False,
            "send_client_reports": False,
            "default_integrations": False,
            "server_name": "web-1",
            **options,
        }
        return sentry_sdk.init(**options)

    yield start
    sentry_sdk.flush(timeout=30)
    sentry_sdk.get_client().close(timeout=5)
    sentry_sdk.get_global_scope().set_client(None)  # back to no client, as before the test


def charge(customer_email: str) -> None:
    try:
        {}["card"]
    except KeyError as err:
        raise CardDeclined(f"card declined for {customer_email}") from err


def test_it_maps_an_exception_chain_into_error(server: RunningServer, sentry: Any) -> None:
    sentry()
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("operation", "payment.stripe.charge")
        scope.set_tag("church", "church_7")
        scope.set_user({"id": "u-1", "email": "jane.doe@example.com"})
        scope.set_extra("password", "hunter2")
        try:
            charge("jane.doe@example.com")
        except CardDeclined as err:
            event_id = sentry_sdk.capture_exception(err)
    sentry_sdk.flush(timeout=30)
    record = stored_by_id(server)[event_id]
    assert record["kind"] == "error"
    assert record["level"] == "error"
    assert record["source"] == "sentry"
    assert record["release"] == "donations@1.4.2"
    assert record["environment"] == "staging"
    assert record["host"] == "web-1"
    assert record["operation"] == "payment.stripe.charge"
    assert record["tags"]["church"] == "church_7"
    error = record["error"]
    assert error["type"].endswith("CardDeclined")
    assert error["message"] == "card declined for j***@example.com"
    assert [f["function"] for f in error["stack"]][-1] == "charge"
    assert error["stack"][-1]["line"] > 0
    assert error["stack"][-1]["file"].endswith("test_ingest_sentry.py")
    assert error["cause"]["type"] == "KeyError"
    assert record["message"].startswith(error["type"])
    assert record["user"]["email"] == "j***@example.com"
    assert record["extra"]["password"] == "[REDACTED]"
    assert record["sdk"].startswith("sentry.python/")


def test_it_stores_a_message_at_its_level(server: RunningServer, sentry: Any) -> None:
    sentry()
    event_id = sentry_sdk.capture_message("Payment retried", level="warning")
    sentry_sdk.flush(timeout=30)
    record = stored_by_id(server)[event_id]
    assert record["message"] == "Payment retried"
    assert record["level"] == "warn"
    assert record["kind"] == "log"
    error_id = sentry_sdk.capture_message("Payments are down", level="fatal")
    sentry_sdk.flush(timeout=30)
    assert stored_by_id(server)[error_id]["kind"] == "error"


def test_it_takes_gzip_as_well_as_brotli(server: RunningServer, sentry: Any) -> None:
    sentry(_experiments={"transport_compression_algo": "gzip"})
    event_id = sentry_sdk.capture_message("sent gzipped")
    sentry_sdk.flush(timeout=30)
    assert stored_by_id(server)[event_id]["message"] == "sent gzipped"


def test_it_stores_sentry_logs_with_their_attributes(server: RunningServer, sentry: Any) -> None:
    sentry(enable_logs=True)
    sentry_sdk.logger.info("Order {order_id} shipped to {email}", order_id=42, email="jane.doe@example.com")
    sentry_sdk.logger.error("Refund failed", attributes={"refund_id": "r-9"})
    sentry_sdk.flush(timeout=30)
    logs = {r["message"]: r for r in stored(server) if r.get("kind") == "log" and r.get("source") == "sentry"}
    shipped = logs["Order 42 shipped to j***@example.com"]
    assert shipped["level"] == "info"
    assert shipped["order_id"] == 42
    assert shipped["email"] == "j***@example.com"
    assert shipped["message_template"] == "Order {order_id} shipped to {email}"
    assert shipped["environment"] == "staging"
    assert shipped["release"] == "donations@1.4.2"
    assert shipped["timestamp"].endswith("Z")
    assert len(shipped["event_id"]) == 32
    assert logs["Refund failed"]["level"] == "error"
    assert logs["Refund failed"]["refund_id"] == "r-9"


def test_it_stores_check_ins_as_check_in_records(server: RunningServer, sentry: Any) -> None:
    sentry()
    check_in_id = capture_checkin(monitor_slug="sentry-nightly", status="in_progress")
    capture_checkin(monitor_slug="sentry-nightly", check_in_id=check_in_id, status="ok", duration=2.5)
    sentry_sdk.flush(timeout=30)
    runs = [r for r in stored(server) if r.get("monitor_slug") == "sentry-nightly"]
    assert [r["status"] for r in runs] == ["in_progress", "ok"]
    assert all(r["kind"] == "check_in" and r["check_in_id"] == check_in_id for r in runs)
    assert runs[1]["duration_ms"] == 2500.0
    assert runs[1]["environment"] == "staging"


def test_it_keeps_a_transaction_as_a_duration_record(server: RunningServer, sentry: Any) -> None:
    sentry(traces_sample_rate=1.0)
    with (
        sentry_sdk.start_transaction(name="POST /donations", op="http.server") as transaction,
        sentry_sdk.start_span(op="db.query", name="INSERT donation"),
    ):
        pass
    sentry_sdk.flush(timeout=30)
    records = [r for r in stored(server) if r.get("kind") == "transaction"]
    (record,) = [r for r in records if r["trace_id"] == transaction.trace_id]
    assert record["message"] == "POST /donations"
    assert record["operation"] == "http.server"
    assert record["duration_ms"] >= 0
    assert record["span_count"] == 1
    assert record["level"] == "info"
