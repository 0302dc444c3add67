"""The Sentry sink, against a local server that speaks Sentry's envelope protocol, with the real sentry-sdk."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import brotli
import pytest
import sentry_sdk

import opswatch
from opswatch import ConfigError, Settings
from opswatch.sinks.sentry import build_event, from_settings
from sentry_server import FakeSentry, decode_body, parse_envelope

log = opswatch.get_logger("donations")


@pytest.fixture
def fake_sentry(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSentry]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FakeSentry() as server:
        yield server
    opswatch.shutdown()
    if sentry_sdk.is_initialized():  # a test that initialized the app's own client
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture
def sentry(fake_sentry: FakeSentry) -> FakeSentry:
    """opswatch forwarding to the fake Sentry, as the seed's production setup does."""
    opswatch.init(
        console=False,
        capture_stdlib=False,
        sentry_dsn=fake_sentry.dsn,
        sentry_enabled=True,
        environment="production",
        release="donations@2.1.0",
        service="donations-api",
    )
    return fake_sentry


def events(server: FakeSentry, count: int = 1) -> list[dict[str, Any]]:
    opswatch.flush(5)
    found: list[dict[str, Any]] = server.wait_for(lambda s: len(s.items_of("event")) >= count and s.items_of("event"))
    return found


#: Secrets the test logs; kept away from the lines whose source the SDK captures as context.
RUNTIME_SECRETS = ("hunter2-correct-horse", "4242 4242 4242 4242", "abcdef0123456789abcdef", "sk_live_51Habcdefghijklmn")


class StripeError(Exception):
    pass


def charge_card(amount: int) -> None:
    raise StripeError(f"card declined for {amount} cents")


def test_it_sends_an_error_with_its_exception(sentry: FakeSentry) -> None:
    try:
        charge_card(100)
    except StripeError as err:
        log.error("Payment failed", {"operation": "payment.stripe.charge", "amount": 100, "church_id": "ch_1"}, err)

    (event,) = events(sentry)
    assert event["level"] == "error"
    assert event["logentry"]["formatted"] == "Payment failed"
    assert event["environment"] == "production" and event["release"] == "donations@2.1.0"
    assert event["logger"] == "donations"
    assert event["tags"]["operation"] == "payment.stripe.charge"
    assert event["tags"]["service"] == "donations-api"
    assert event["contexts"]["fields"] == {"amount": 100, "church_id": "ch_1"}
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "StripeError" and exception["module"] == "test_sink_sentry"
    assert exception["value"] == "card declined for 100 cents"
    frames = exception["stacktrace"]["frames"]
    assert [f["function"] for f in frames] == ["test_it_sends_an_error_with_its_exception", "charge_card"]
    assert frames[-1]["lineno"] > 0 and frames[-1]["filename"].endswith("test_sink_sentry.py")
    assert "abs_path" not in frames[-1] or frames[-1]["abs_path"].startswith("/")
    assert frames[-1]["in_app"] is True
    assert "raise StripeError" in frames[-1]["context_line"]
    assert any("def charge_card" in line for line in frames[-1]["pre_context"])


def test_it_sends_an_error_logged_without_an_exception_as_a_message(sentry: FakeSentry) -> None:
    # The seed's troubleshooting calls this the wrong format; it still reaches Sentry.
    log.error("Operation failed", {"operation": "payment.process", "error": "card declined"})
    (event,) = events(sentry)
    assert "exception" not in event
    assert event["logentry"]["formatted"] == "Operation failed"
    assert event["contexts"]["fields"]["error"] == "card declined"
    assert event["tags"]["operation"] == "payment.process"


def test_it_sends_fatal_records_as_fatal(sentry: FakeSentry) -> None:
    log.fatal("Database unreachable", operation="db.connect")
    (event,) = events(sentry)
    assert event["level"] == "fatal"


def test_it_leaves_info_and_warnings_out(sentry: FakeSentry) -> None:
    log.info("Donation created", operation="donations.create.success")
    log.warn("Slow query", operation="db.query", duration_ms=2400)
    log.error("Refund failed", operation="payment.refund")
    (event,) = events(sentry)
    assert event["logentry"]["formatted"] == "Refund failed"


def test_it_keeps_the_chain_of_causes_oldest_first(sentry: FakeSentry) -> None:
    try:
        try:
            {}["church"]
        except KeyError as cause:
            raise RuntimeError("could not load the church") from cause
    except RuntimeError as err:
        log.exception("Church lookup failed", operation="church.load", error=err)
    (event,) = events(sentry)
    values = event["exception"]["values"]
    assert [v["type"] for v in values] == ["KeyError", "RuntimeError"]
    assert values[-1]["mechanism"]["exception_id"] == 0
    assert values[0]["mechanism"]["parent_id"] == 0


def test_it_sends_the_same_exception_each_time_it_is_logged(sentry: FakeSentry) -> None:
    error = StripeError("card declined")
    log.error("Payment failed", {"operation": "payment.stripe.charge"}, error)
    log.error("Payment failed again", {"operation": "payment.stripe.charge"}, error)
    assert len(events(sentry, 2)) == 2  # no Dedupe integration swallowing the second one


def test_it_never_sends_a_secret(sentry: FakeSentry) -> None:
    # Runtime values, not literals next to the raise: source context lines are the app's own code.
    secrets = list(RUNTIME_SECRETS)
    try:
        raise StripeError(f"Stripe rejected key {secrets[3]} for card {secrets[1]}")
    except StripeError as err:
        log.error(
            "Charge failed with Bearer " + secrets[2],
            {"operation": "payment.stripe.charge", "password": secrets[0], "customer": {"card_number": secrets[1]}},
            err,
        )
    (event,) = events(sentry)
    raw = b"".join(
        item.payload for envelope in sentry.envelopes for item in envelope.items
    )
    for secret in secrets:
        assert secret.encode() not in raw
    assert event["contexts"]["fields"]["password"] == "[REDACTED]"


def test_it_skips_sentry_sdks_own_log_records(sentry: FakeSentry) -> None:
    opswatch.get_logger("sentry_sdk.errors").error("flush timed out")
    log.error("Real problem", operation="app.fail")
    (event,) = events(sentry)
    assert event["logentry"]["formatted"] == "Real problem"


# -- when it is on, and whose client it uses -------------------------------------------------------------


def test_it_is_off_without_production_or_sentry_enabled(fake_sentry: FakeSentry) -> None:
    assert from_settings(Settings.load(environ={}, sentry_dsn=fake_sentry.dsn, environment="development")) is None
    assert from_settings(Settings.load(environ={}, environment="production")) is None
    disabled = Settings.load(environ={}, sentry_dsn=fake_sentry.dsn, environment="production", sentry_enabled=False)
    assert from_settings(disabled) is None
    assert not sentry_sdk.is_initialized()


def test_it_is_on_in_production_and_uninstalls_its_client_on_shutdown(fake_sentry: FakeSentry) -> None:
    opswatch.init(console=False, capture_stdlib=False, sentry_dsn=fake_sentry.dsn, environment="production")
    assert sentry_sdk.is_initialized()
    log.error("Boom", operation="x")
    opswatch.shutdown()
    assert fake_sentry.items_of("event")  # flushed on the way out
    assert not sentry_sdk.is_initialized()


def test_it_replaces_its_own_client_when_opswatch_is_initialized_again(fake_sentry: FakeSentry) -> None:
    settings = {"console": False, "capture_stdlib": False, "sentry_dsn": fake_sentry.dsn, "sentry_enabled": True}
    opswatch.init(**settings, release="one")
    opswatch.init(**settings, release="two")
    assert sentry_sdk.is_initialized()
    log.error("After the second init", operation="x")
    (event,) = events(fake_sentry)
    assert event["release"] == "two"


def test_it_uses_the_apps_own_sentry_client_and_leaves_it_running(fake_sentry: FakeSentry) -> None:
    sentry_sdk.init(
        dsn=fake_sentry.dsn,
        release="app-release",
        environment="app-env",
        auto_session_tracking=False,
        send_client_reports=False,
        default_integrations=False,
    )
    app_client = sentry_sdk.get_client()
    opswatch.init(console=False, capture_stdlib=False, sentry_dsn="http://other@127.0.0.1:9/2", sentry_enabled=True)
    log.error("Through the app's client", operation="x")
    opswatch.shutdown()
    assert sentry_sdk.get_client() is app_client and app_client.is_active()
    sentry_sdk.flush(30)
    assert fake_sentry.wait_for(lambda s: s.items_of("event"))


def test_it_refuses_a_dsn_sentry_cannot_use(fake_sentry: FakeSentry) -> None:
    with pytest.raises(ConfigError) as caught:
        opswatch.init(console=False, sentry_dsn="https://key@sentry.example.com/not-a-number", sentry_enabled=True)
    assert caught.value.setting == "sentry_dsn"


# -- the event, as a pure function of the record ---------------------------------------------------------


def test_it_builds_fingerprint_trace_and_request_tags_from_fields() -> None:
    event = build_event(
        {
            "timestamp": "2025-11-01T02:00:00.123Z",
            "level": "error",
            "message": "Webhook failed",
            "logger": "webhooks",
            "event_id": "ab" * 16,
            "operation": "stripe.webhook",
            "request_id": "req-42",
            "trace_id": "0123456789abcdef" * 2,
            "span_id": "0123456789abcdef",
            "fingerprint": ["stripe-webhook", "{{ default }}"],
            "attempt": 3,
        }
    )
    assert event["event_id"] == "ab" * 16
    assert event["timestamp"] == "2025-11-01T02:00:00.123Z"
    assert event["fingerprint"] == ["stripe-webhook", "{{ default }}"]
    assert event["contexts"]["trace"] == {"trace_id": "0123456789abcdef" * 2, "span_id": "0123456789abcdef"}
    assert event["tags"] == {"operation": "stripe.webhook", "request_id": "req-42"}
    assert event["contexts"]["fields"] == {"attempt": 3}


def test_it_cuts_long_tags_and_makes_up_a_missing_event_id() -> None:
    event = build_event({"level": "error", "message": "x", "operation": "o" * 500, "event_id": "not-hex"})
    assert len(event["tags"]["operation"]) == 200
    assert len(event["event_id"]) == 32 and event["event_id"] != "not-hex"


# -- the fake server itself understands every body shape -------------------------------------------------


def test_it_has_a_fake_server_that_reads_items_with_and_without_length() -> None:
    body = (
        b'{"event_id":"' + b"a" * 32 + b'"}\n'
        b'{"type":"event","length":13}\n{"message":1}\n'
        b'{"type":"check_in"}\n{"status":"ok"}\n'
        b'{"type":"attachment","length":3}\nabc'
    )
    headers, items = parse_envelope(body)
    assert headers["event_id"] == "a" * 32
    assert [(i.type, i.json) for i in items] == [("event", {"message": 1}), ("check_in", {"status": "ok"}),
                                                 ("attachment", None)]
    assert decode_body(gzip.compress(body), "gzip") == body
    assert decode_body(brotli.compress(body), "br") == body


def test_it_sends_nothing_of_the_apps_scope_or_stack_through_the_apps_client(fake_sentry: FakeSentry) -> None:
    sentry_sdk.init(
        dsn=fake_sentry.dsn,
        attach_stacktrace=True,  # would add the live stack, local variables included, to message events
        auto_session_tracking=False,
        send_client_reports=False,
        default_integrations=False,
    )
    sentry_sdk.add_breadcrumb(message="login with password hunter2-breadcrumb")
    sentry_sdk.set_user({"email": "ann@example.com"})
    opswatch.init(console=False, capture_stdlib=False, sentry_dsn=fake_sentry.dsn, sentry_enabled=True)

    def checkout() -> None:
        card = "4242 4242 4242 4242-local"  # a local variable sentry-sdk would ship with the stack
        log.error("Checkout failed", operation="checkout", card_last4=card[-10:-6])

    checkout()
    opswatch.flush(5)
    (event,) = fake_sentry.wait_for(lambda s: s.items_of("event"))
    raw = b"".join(item.payload for envelope in fake_sentry.envelopes for item in envelope.items)
    for secret in (b"hunter2-breadcrumb", b"ann@example.com", b"4242 4242 4242 4242-local"):
        assert secret not in raw
    assert event["logentry"]["formatted"] == "Checkout failed"
