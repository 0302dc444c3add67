"""Channels: Standard Webhooks signing, URL and secret validation at configuration time, fixed timeouts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from alerts_http import HANG, ScriptedServer
from opswatch import ConfigError
from opswatch.alerts import CHANNELS, DeliveryError, Notifier, RetryPolicy, SlackChannel, SlackNotifications
from opswatch.alerts.channels.base import Answer
from opswatch.alerts.channels.email import EmailChannel
from opswatch.alerts.channels.webhook import WebhookChannel, new_secret
from opswatch.alerts.testing import MemoryTransport, TransportError

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """An independent Standard Webhooks verifier, written from the specification."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(sig, expected)
        for version, _, sig in (part.partition(",") for part in headers["webhook-signature"].split())
    )


def test_it_registers_channels_by_kind() -> None:
    assert {"slack": SlackChannel, "webhook": WebhookChannel, "email": EmailChannel} == CHANNELS


def test_it_signs_webhooks_the_standard_webhooks_way() -> None:
    with ScriptedServer([(200, "")]) as server:
        channel = WebhookChannel(server.url, secret=SECRET)
        try:
            channel.deliver(SlackNotifications.cron_job_failed(job_name="nightly", error="exit 1"))
        finally:
            channel.close()
        request = server.requests[0]
    assert request.headers["webhook-id"].startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert verify(SECRET, request.headers, request.body)
    assert not verify("whsec_" + base64.b64encode(b"x" * 32).decode(), request.headers, request.body)
    data = request.json["data"]
    assert request.json["type"] == "alert"
    assert data["title"] == "Cron Job Failure" and data["severity"] == "critical"
    assert {"label": "Job", "value": "nightly"} in data["facts"]


def test_it_keeps_the_webhook_id_across_retries_and_signs_each_attempt() -> None:
    with ScriptedServer([(503, "busy"), (200, "")]) as server:
        notifier = Notifier(
            [WebhookChannel(server.url, secret=SECRET)], retry=RetryPolicy(initial=0.01, maximum=0.02)
        )
        try:
            assert notifier.send(SlackNotifications.alert(title="x")).wait(5)
        finally:
            notifier.close(1)
        first, second = server.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert verify(SECRET, first.headers, first.body) and verify(SECRET, second.headers, second.body)


def test_it_sends_unsigned_webhooks_without_a_secret() -> None:
    transport = MemoryTransport()
    WebhookChannel("https://example.com/hook", transport=transport).deliver(
        SlackNotifications.alert(title="x")
    )
    assert "webhook-signature" not in transport.requests[0].headers
    assert "webhook-id" in transport.requests[0].headers


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("s3cret", "whsec_"),
        ("whsec_not base64!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
    ],
)
def test_it_refuses_a_malformed_secret_naming_the_setting(secret: str, problem: str) -> None:
    import opswatch

    with pytest.raises(ConfigError) as caught:
        opswatch.init(
            console=False,
            alerts_enabled=True,
            alert_webhook_url="https://example.com/hook",
            alert_webhook_secret=secret,
        )
    assert caught.value.setting == "alert_webhook_secret"
    assert problem in caught.value.problem
    assert new_secret().startswith("whsec_")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.slack.com/x", "http(s) URL"),
        ("https:///services/x", "no host"),
        ("https://hooks.slack.com/services/x y", "spaces"),
        ("https://hooks.slack.com/services/x#frag", "fragment"),
        ("https://hooks.slack.com:99999/x", "not a valid URL"),
        ("https://hooks.slack.com/" + "x" * 3000, "longer than"),
    ],
)
def test_it_validates_webhook_urls_at_configuration_time(url: str, problem: str) -> None:
    import opswatch

    with pytest.raises(ConfigError) as caught:
        opswatch.init(console=False, alerts_enabled=True, slack_webhook_url=url)
    assert caught.value.setting.startswith("slack_webhook_url")
    assert problem in str(caught.value)


@pytest.mark.parametrize("timeout", [0, -1, 31, float("inf")])
def test_it_does_not_let_the_timeout_be_removed(timeout: float) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        SlackChannel("https://hooks.slack.com/services/x", timeout=timeout)


def test_it_gives_up_on_a_hung_endpoint_after_its_timeout() -> None:
    with ScriptedServer([HANG]) as server:
        channel = SlackChannel(server.url, timeout=0.3)
        try:
            with pytest.raises(DeliveryError) as caught:
                channel.deliver(SlackNotifications.alert(title="x"))
        finally:
            channel.close()
    assert not caught.value.permanent
    assert "no answer" in caught.value.reason
    assert channel.status.last_duration is not None and channel.status.last_duration >= 0.3


def test_it_judges_slack_answers() -> None:
    def judged(status: int, body: str, headers: dict[str, str] | None = None) -> DeliveryError:
        channel = SlackChannel(
            "https://hooks.slack.com/x", transport=MemoryTransport([Answer(status, body, headers or {})])
        )
        with pytest.raises(DeliveryError) as caught:
            channel.deliver(SlackNotifications.alert(title="x"))
        return caught.value

    assert judged(400, "invalid_blocks").text_only
    assert judged(400, "invalid_payload").disable
    assert judged(400, "no_text").permanent and not judged(400, "no_text").disable
    assert judged(404, "no_service").disable
    assert judged(410, "channel_is_archived").disable
    assert judged(403, "action_prohibited").disable
    limited = judged(429, "rate_limited", {"retry-after": "7"})
    assert limited.rate_limited and limited.retry_after == 7.0 and not limited.permanent
    assert not judged(502, "bad gateway").permanent


def test_it_reports_a_transport_error_as_transient() -> None:
    channel = SlackChannel(
        "https://hooks.slack.com/x", transport=MemoryTransport([TransportError("refused")])
    )
    with pytest.raises(DeliveryError) as caught:
        channel.deliver(SlackNotifications.alert(title="x"))
    assert not caught.value.permanent
    assert channel.status.last_error == "no answer: refused"
