"""The seed's Slack templates, and Slack's limits enforced by cutting (never by rejecting)."""

from __future__ import annotations

import pytest

from opswatch.alerts import Alert, SlackNotifications, fold
from opswatch.alerts.blocks import slack_payload
from opswatch.alerts.limits import (
    CUT_MARKER,
    SLACK_MAX_BLOCKS,
    SLACK_MAX_FIELD_TEXT,
    SLACK_MAX_FIELDS,
    SLACK_MAX_HEADER_TEXT,
    SLACK_MAX_SECTION_TEXT,
    SLACK_MAX_TEXT,
)
from opswatch.alerts.templates import alert_from_record


def blocks_of(alert: Alert) -> list[dict]:  # type: ignore[type-arg]
    return slack_payload(alert)["blocks"]  # type: ignore[no-any-return]


def test_it_builds_the_seeds_payment_failure_message() -> None:
    alert = SlackNotifications.payment_failed(
        amount=100,
        church_name="First Baptist Church",
        error="card_declined",
        sentry_url="https://sentry.io/x",
    )
    assert alert.text == (
        "🔥 Payment Failure\n\n"
        "A donation payment has failed and requires immediate attention.\n\n"
        "Amount: $100.00\nChurch: First Baptist Church\nError: card_declined\n\n"
        "View in Sentry: https://sentry.io/x"
    )
    blocks = blocks_of(alert)
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "🔥 Payment Failure", "emoji": True},
    }
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields == ["*Amount:*\n$100.00", "*Church:*\nFirst Baptist Church", "*Error:*\ncard_declined"]
    button = blocks[-1]["elements"][0]
    assert button["url"] == "https://sentry.io/x" and button["text"]["text"] == "View in Sentry"


@pytest.mark.parametrize(
    ("alert", "title", "facts"),
    [
        (
            SlackNotifications.slow_query(
                query="donations.findMany", duration=2500, endpoint="/api/donations"
            ),
            "⚠️ Slow Query",
            {"Query": "donations.findMany", "Duration": "2,500 ms", "Endpoint": "/api/donations"},
        ),
        (
            SlackNotifications.high_error_rate(error_rate=15.5, time_window="last 5 minutes"),
            "⚠️ High Error Rate",
            {"Error rate": "15.5%", "Window": "last 5 minutes"},
        ),
        (
            SlackNotifications.cron_job_failed(job_name="cleanup-pending-donations", error="timeout"),
            "🔥 Cron Job Failure",
            {"Job": "cleanup-pending-donations", "Error": "timeout"},
        ),
        (
            SlackNotifications.campaign_failed(
                campaign_name="Weekly Newsletter", recipient_count=150, error="x"
            ),
            "🔥 Campaign Failure",
            {"Campaign": "Weekly Newsletter", "Recipients": "150", "Error": "x"},
        ),
        (
            SlackNotifications.database_error(error="deadlock", operation="donations.create"),
            "🔥 Database Error",
            {"Operation": "donations.create", "Error": "deadlock"},
        ),
        (
            SlackNotifications.fatal_error(message="worker crashed", error="MemoryError"),
            "🔥 Fatal Error",
            {"Error": "MemoryError"},
        ),
        (
            SlackNotifications.alert(title="Disk almost full", severity="warning", fields={"Free": "2%"}),
            "⚠️ Disk almost full",
            {"Free": "2%"},
        ),
    ],
)
def test_it_builds_every_template_with_its_marker_and_facts(alert: Alert, title: str, facts: dict) -> None:  # type: ignore[type-arg]
    assert alert.heading == title
    assert dict(alert.facts) == facts
    assert slack_payload(alert)["text"].startswith(title)


def test_it_leaves_out_facts_that_were_not_given() -> None:
    alert = SlackNotifications.payment_failed(error="card_declined")
    assert [label for label, _ in alert.facts] == ["Error"]
    assert not any(b["type"] == "actions" for b in blocks_of(alert))  # no URL, no button


def test_it_recognises_repeats_of_the_same_problem_despite_ids_and_numbers() -> None:
    first = SlackNotifications.database_error(error="row 123 locked by tx 9f8e7d6c5b4a", operation="a.b")
    again = SlackNotifications.database_error(error="row 456 locked by tx 0a1b2c3d4e5f", operation="a.b")
    other = SlackNotifications.database_error(error="disk full", operation="a.b")
    assert first.fingerprint == again.fingerprint != other.fingerprint


def test_it_builds_alerts_from_the_records_the_seed_logs() -> None:
    record = {
        "level": "error",
        "logger": "app",
        "message": "Payment failed",
        "operation": "payment.stripe.charge",
        "amount": 100,
        "churchName": "First Baptist",
        "service": "donations-api",
        "environment": "production",
        "event_id": "e" * 32,
        "error": {"type": "stripe.error.CardError", "message": "card_declined", "stack": []},
    }
    alert = alert_from_record("payment_failed", record)
    assert dict(alert.facts)["Amount"] == "$100.00"
    assert dict(alert.facts)["Church"] == "First Baptist"
    assert alert.error == "CardError: card_declined"
    assert "donations-api · production" in alert.context
    slow = alert_from_record(
        "slow_query",
        {"level": "error", "operation": "performance.critical.db.donations.findMany", "durationMs": 2500},
    )
    assert dict(slow.facts)["Query"] == "donations.findMany"
    assert dict(slow.facts)["Duration"] == "2,500 ms"
    cron = alert_from_record("cron_job_failed", {"level": "error", "operation": "cron.check_expired.error"})
    assert dict(cron.facts)["Job"] == "check_expired"


def test_it_cuts_the_header_at_150_characters_with_a_marker() -> None:
    fits = SlackNotifications.alert(title="x" * (SLACK_MAX_HEADER_TEXT - 2))  # "🔥 " takes two
    assert blocks_of(fits)[0]["text"]["text"] == "🔥 " + "x" * (SLACK_MAX_HEADER_TEXT - 2)
    long = SlackNotifications.alert(title="x" * (SLACK_MAX_HEADER_TEXT - 1))
    header = blocks_of(long)[0]["text"]["text"]
    assert len(header) == SLACK_MAX_HEADER_TEXT and header.endswith(CUT_MARKER)


def test_it_cuts_a_section_at_3000_characters_with_a_marker() -> None:
    fits = blocks_of(SlackNotifications.alert(title="t", message="m" * SLACK_MAX_SECTION_TEXT))
    assert fits[1]["text"]["text"] == "m" * SLACK_MAX_SECTION_TEXT
    cut = blocks_of(SlackNotifications.alert(title="t", message="m" * (SLACK_MAX_SECTION_TEXT + 1)))
    text = cut[1]["text"]["text"]
    assert len(text) == SLACK_MAX_SECTION_TEXT and text.endswith(CUT_MARKER)


def test_it_never_splits_an_escaped_character_when_cutting() -> None:
    blocks = blocks_of(SlackNotifications.alert(title="t", message="<" * 5000))
    text = blocks[1]["text"]["text"]
    assert len(text) <= SLACK_MAX_SECTION_TEXT
    assert text.removesuffix(CUT_MARKER).replace("&lt;", "") == ""


def test_it_escapes_slack_control_characters() -> None:
    blocks = blocks_of(SlackNotifications.alert(title="t", message="<!channel> & <@U123>"))
    assert blocks[1]["text"]["text"] == "&lt;!channel&gt; &amp; &lt;@U123&gt;"


def test_it_puts_at_most_10_fields_in_a_section_each_within_its_limit() -> None:
    fields = {f"fact {i}": "v" * 5000 for i in range(SLACK_MAX_FIELDS + 1)}
    blocks = blocks_of(SlackNotifications.alert(title="t", fields=fields))
    sections = [b for b in blocks if "fields" in b]
    assert [len(s["fields"]) for s in sections] == [SLACK_MAX_FIELDS, 1]
    assert all(len(f["text"]) <= SLACK_MAX_FIELD_TEXT for s in sections for f in s["fields"])
    assert all(f["text"].endswith(CUT_MARKER) for s in sections for f in s["fields"])


def test_it_keeps_a_message_with_a_thousand_facts_within_50_blocks() -> None:
    alert = SlackNotifications.alert(
        title="t", message="m", error="e", url="https://x.test/", fields={f"k{i}": i for i in range(1000)}
    )
    blocks = blocks_of(alert)
    assert len(blocks) == SLACK_MAX_BLOCKS
    assert any("more facts not shown" in b.get("text", {}).get("text", "") for b in blocks)
    assert blocks[-1]["type"] == "actions"  # the link survives


def test_it_cuts_the_plain_text_at_40000_characters() -> None:
    payload = slack_payload(SlackNotifications.alert(title="t", message="m" * 50_000), text_only=True)
    assert set(payload) == {"text"}
    assert len(payload["text"]) == SLACK_MAX_TEXT and payload["text"].endswith(CUT_MARKER)


def test_it_shows_the_error_in_a_code_block_when_it_is_not_a_fact() -> None:
    alert = SlackNotifications.fatal_error(message="boom", operation=None)
    assert not any(b.get("text", {}).get("text", "").startswith("*Error*") for b in blocks_of(alert))
    alert = SlackNotifications.alert(title="t", error="Traceback ```x```")
    code = [b for b in blocks_of(alert) if b.get("text", {}).get("text", "").startswith("*Error*")]
    assert code and code[0]["text"]["text"] == "*Error*\n```\nTraceback '''x'''\n```"


def test_it_says_how_many_more_since_when_repeats_were_counted() -> None:
    alert = SlackNotifications.payment_failed(error="x").with_repeats(199, 1_700_000_000.0)
    assert alert.repeat_note is not None and alert.repeat_note.startswith("199 more since ")
    assert alert.occurrences == 200
    context = [b for b in blocks_of(alert) if b["type"] == "context"]
    assert context[0]["elements"][0]["text"].startswith("*199 more since")


def test_it_folds_a_burst_into_one_summary_that_counts_everything() -> None:
    alerts = [SlackNotifications.payment_failed(error=f"e{i}") for i in range(3)]
    alerts += [SlackNotifications.cron_job_failed(job_name="nightly").with_repeats(4, 1.0)]
    summary = fold(alerts)
    assert summary.title == "4 alerts"
    assert summary.folded == 4
    assert summary.occurrences == 3 + 5
    assert "• 3× 🔥 Payment Failure" in summary.summary
    again = fold([summary, SlackNotifications.alert(title="x", severity="info")])
    assert again.folded == 5 and again.occurrences == 9
    assert again.severity == "critical"


def test_it_refuses_an_unknown_severity() -> None:
    with pytest.raises(ValueError, match="unknown severity"):
        Alert(title="x", severity="huge")  # type: ignore[arg-type]
