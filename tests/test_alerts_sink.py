"""End to end: opswatch.init() + log.error -> routes -> a real local "Slack"; send_slack_notification."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import opswatch
from alerts_http import HANG, ScriptedServer
from opswatch.alerts.sink import AlertSink, from_settings
from opswatch.config import Settings
from opswatch.testing import capture_logs


@pytest.fixture(autouse=True)
def clean_runtime() -> Iterator[None]:
    yield
    opswatch.shutdown(timeout=1.0)


@pytest.fixture
def slack() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def alert_sink() -> AlertSink:
    from opswatch._runtime import STATE

    return next(s for s in STATE.get().sinks if isinstance(s, AlertSink))


def test_it_alerts_on_a_payment_error_in_production(slack: ScriptedServer) -> None:
    opswatch.init(environment="production", slack_webhook_url=slack.url, console=False)
    log = opswatch.get_logger("donations")
    log.error(
        "Payment failed",
        {"operation": "payment.stripe.charge", "amount": 100, "churchName": "First Baptist"},
        ValueError("card_declined"),
    )
    log.error("Charge failed", {"operation": "donations.create"})  # the seed's "won't trigger" example
    assert opswatch.flush(30)
    assert len(slack.requests) == 1
    payload = slack.requests[0].json
    assert payload["blocks"][0]["text"]["text"] == "🔥 Payment Failure"
    assert "Amount: $100.00" in payload["text"] and "Church: First Baptist" in payload["text"]
    assert "ValueError: card_declined" in payload["text"]


def test_it_does_not_alert_outside_production_unless_enabled(slack: ScriptedServer) -> None:
    assert from_settings(Settings.load({}, slack_webhook_url=slack.url)) is None
    assert from_settings(Settings.load({}, environment="production")) is None  # no channel configured
    assert from_settings(Settings.load({"OPSWATCH_ALERTS_ENABLED": "true", "SLACK_WEBHOOK_URL": slack.url}))
    opswatch.init(slack_webhook_url=slack.url, console=False)
    opswatch.get_logger().fatal("boom")
    assert opswatch.flush(30)
    assert slack.requests == []


def test_it_sends_nothing_unredacted(slack: ScriptedServer) -> None:
    opswatch.init(alerts_enabled=True, slack_webhook_url=slack.url, console=False)
    opswatch.get_logger().error(
        "Charge for jane@example.com failed", operation="payment.charge", card="4242 4242 4242 4242"
    )
    opswatch.send_slack_notification(
        opswatch.SlackNotifications.payment_failed(error="token sk_live_abcdefghijklmnopqrstuvwx refused"),
        wait=True,
    )
    assert opswatch.flush(30)
    bodies = b"".join(r.body for r in slack.requests)
    assert len(slack.requests) == 2
    assert b"jane@example.com" not in bodies
    assert b"4242 4242 4242 4242" not in bodies
    assert b"sk_live_abcdefghijklmnopqrstuvwx" not in bodies


def test_it_sends_a_slack_notification_and_waits_for_the_answer(slack: ScriptedServer) -> None:
    opswatch.init(slack_webhook_url=slack.url, console=False)  # development: explicit sends still work
    delivery = opswatch.send_slack_notification(
        opswatch.SlackNotifications.payment_failed(
            amount=100, church_name="Test Church", error="Test error - please ignore"
        ),
        wait=True,
    )
    assert delivery.state == "delivered" and delivery.ok
    assert len(slack.requests) == 1
    assert "Test Church" in slack.requests[0].text


def test_it_returns_at_once_and_flush_drains(slack: ScriptedServer) -> None:
    opswatch.init(slack_webhook_url=slack.url, console=False)
    delivery = opswatch.send_slack_notification("Deploy finished")
    assert delivery.state in ("queued", "delivered")
    assert opswatch.flush(30)
    assert delivery.state == "delivered"
    assert slack.requests[0].text.startswith("ℹ️ Deploy finished")


def test_it_skips_and_warns_once_when_no_webhook_is_configured() -> None:
    opswatch.init(console=False)
    with capture_logs() as logs:
        first = opswatch.send_slack_notification("x", wait=True)
        opswatch.send_slack_notification("y")
    assert first.state == "skipped"
    warnings = [r for r in logs if r.get("operation") == "alerts.unconfigured"]
    assert len(warnings) == 1  # said once, not on every call


def test_it_costs_log_error_nothing_when_the_webhook_hangs() -> None:
    with ScriptedServer([HANG]) as server:
        opswatch.init(alerts_enabled=True, slack_webhook_url=server.url, console=False)
        log = opswatch.get_logger("donations")
        for i in range(3_000):
            log.error("Payment failed", operation="payment.stripe.charge", attempt=i)
        stats = alert_sink().stats()
        assert stats["queued"] <= 1_000  # bounded
        assert stats["dropped"] >= 3_000 - 1_000 - 1  # and what was dropped is counted
        assert opswatch.flush(0.1) is False  # the hung delivery is still pending, the app is not waiting
        opswatch.shutdown(timeout=0.2)


def test_it_does_not_route_its_own_reports(slack: ScriptedServer) -> None:
    opswatch.init(
        alerts_enabled=True,
        slack_webhook_url=slack.url,
        console=False,
        alert_routes=[{"name": "all", "template": "alert"}],
    )
    opswatch.get_logger("opswatch.alerts").error("Alert channel failed", operation="alerts.channel.failed")
    opswatch.get_logger("app").error("real problem")
    assert opswatch.flush(30)
    assert [r.json["blocks"][0]["text"]["text"] for r in slack.requests] == ["🚨 real problem"]


def test_it_alerts_through_the_generic_webhook_too(slack: ScriptedServer) -> None:
    with ScriptedServer([(204, "")]) as hook:
        opswatch.init(
            environment="production", slack_webhook_url=slack.url, alert_webhook_url=hook.url, console=False
        )
        opswatch.get_logger().error("Query failed", operation="db.query")
        assert opswatch.flush(30)
        assert len(slack.requests) == 1 and len(hook.requests) == 1
        assert hook.requests[0].json["data"]["title"] == "Database Error"
        assert hook.requests[0].json["data"]["data"]["operation"] == "db.query"


@pytest.mark.slow
def test_it_keeps_delivering_in_a_forked_child(slack: ScriptedServer, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os
            import opswatch
            from opswatch import SlackNotifications as S, send_slack_notification as send
            opswatch.init(slack_webhook_url={slack.url!r}, console=False)
            assert send(S.cron_job_failed(job_name="parent-before"), wait=True).state == "delivered"
            pid = os.fork()
            if pid == 0:
                ok = send(S.cron_job_failed(job_name="child"), wait=True).state == "delivered"
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            assert send(S.cron_job_failed(job_name="parent-after"), wait=True).state == "delivered"
            """
        )
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=30)
    jobs = sorted(r.text.split("Job: ")[1].split("\n")[0] for r in slack.requests)
    assert jobs == ["child", "parent-after", "parent-before"]


@pytest.mark.slow
def test_it_flushes_pending_alerts_at_exit(slack: ScriptedServer, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import opswatch
            opswatch.init(slack_webhook_url={slack.url!r}, console=False)
            opswatch.send_slack_notification(opswatch.SlackNotifications.cron_job_failed(job_name="nightly"))
            """
        )
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=30)
    assert len(slack.requests) == 1
    assert "nightly" in slack.requests[0].text


def test_it_exports_the_seeds_calls() -> None:
    assert {"SlackNotifications", "send_slack_notification"} <= set(opswatch.__all__)
    assert opswatch.__all__ == sorted(opswatch.__all__)
