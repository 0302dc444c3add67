"""Email wired in: the SDK's and the server's settings, redaction on the way to the SMTP server (the app's
own alerts and the server's rule notifications), and ``opswatch notify test --channel email``."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

import opswatch
from opswatch.alerts.channels import EmailChannel
from opswatch.alerts.sink import channels_from_settings
from opswatch.cli import main
from opswatch.config import ConfigError, Settings
from opswatch.server.config import ServerSettings
from opswatch.server.rules import rules_for
from opswatch.server.testing import running_server
from redact_cast import SHAPES
from rules_cast import T0, request
from smtp_receiver import SmtpReceiver
from test_rules_redaction import RULES  # the same rule: a label per customer and note

SECRET = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
CUSTOMER = "ana.lopez@example.org"
ENV_NAMES = (
    "SLACK_WEBHOOK_URL",
    "OPSWATCH_ALERT_WEBHOOK_URL",
    "OPSWATCH_ALERT_WEBHOOK_SECRET",
    "OPSWATCH_SMTP_URL",
    "OPSWATCH_SMTP_CA_FILE",
    "OPSWATCH_EMAIL_FROM",
    "OPSWATCH_EMAIL_TO",
)


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    yield
    opswatch.shutdown(timeout=1.0)


def email_env(server: SmtpReceiver) -> dict[str, str]:
    return {
        "OPSWATCH_SMTP_URL": server.url(),
        "OPSWATCH_SMTP_CA_FILE": server.ca_file,
        "OPSWATCH_EMAIL_FROM": "opswatch@example.org",
        "OPSWATCH_EMAIL_TO": "ops@example.org, oncall@example.org",
    }


def whole_text(message: EmailMessage) -> str:
    """Headers and every decoded part: what a reader (or a leak) would see."""
    parts = [str(value) for value in message.values()]
    parts += [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    return "\n".join(parts)


def test_the_sdk_and_the_server_read_the_same_email_settings(tmp_path: Path) -> None:
    env = {
        "OPSWATCH_SMTP_URL": "smtp://u:p@mail.example.org",
        "OPSWATCH_EMAIL_FROM": "opswatch@example.org",
        "OPSWATCH_EMAIL_TO": "ops@example.org,  oncall@example.org",
        "OPSWATCH_SMTP_CA_FILE": "",
    }
    sdk = Settings.load(env)
    server = ServerSettings.load(env, data_dir=tmp_path)
    for settings in (sdk, server):
        assert settings.email_to == ("ops@example.org", "oncall@example.org")
        [channel] = channels_from_settings(settings)  # type: ignore[arg-type]
        assert isinstance(channel, EmailChannel) and channel.name == "email"
    assert Settings.load({**env, "OPSWATCH_ALERTS_ENABLED": "true"}).alerts_active


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("OPSWATCH_SMTP_URL", "imap://u:secretpw@mail.example.org", "smtp_url"),
        ("OPSWATCH_EMAIL_TO", "ops@example.org\r\nBcc: x@example.com", "email_to"),
    ],
)
def test_a_bad_email_setting_is_named_in_both_settings(
    tmp_path: Path, variable: str, value: str, setting: str
) -> None:
    for load in (
        lambda: Settings.load({variable: value}),
        lambda: ServerSettings.load({variable: value}, data_dir=tmp_path),
    ):
        with pytest.raises(ConfigError) as caught:
            load()
        assert setting in caught.value.setting and variable in caught.value.setting
        assert "secretpw" not in str(caught.value)


def test_the_apps_own_alerts_reach_email_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpReceiver(tmp_path) as server:
        for name, value in email_env(server).items():
            monkeypatch.setenv(name, value)
        opswatch.init(environment="production", console=False)
        opswatch.get_logger("donations").error(
            f"Payment failed for {CUSTOMER} with key {SECRET}",
            {"operation": "payment.stripe.charge", "amount": 100, "token": SECRET},
            ValueError(f"card_declined for {CUSTOMER}"),
        )
        assert opswatch.flush(10)
        [message] = server.wait_for(1)
    seen = whole_text(message)
    assert "Payment Failure" in message["Subject"] and "card_declined" in seen
    assert SECRET not in seen and CUSTOMER not in seen
    assert "example.org" in seen  # the address is masked, its domain still says whose


def test_the_servers_rule_notifications_reach_email_redacted_with_rule_labels_value_and_threshold(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    now = T0 + 120
    fixed = datetime.datetime.fromtimestamp(now, datetime.UTC)
    with SmtpReceiver(tmp_path) as smtp:
        settings = {
            "rules_file": path,
            "rules_ingest_delay": 0,
            "rules_group_wait": 0,
            "rules_defaults": False,
            "smtp_url": smtp.url(),
            "smtp_ca_file": smtp.ca_file,
            "email_from": "opswatch@example.org",
            "email_to": ["ops@example.org"],
        }
        with running_server(
            tmp_path, now=lambda: fixed, notify_new_issues=False, rule_clock=False, **settings  # rounds by hand
        ) as server:
            records = [
                request(T0 + 60 + i, level="error", customer=CUSTOMER, note=f"key {SECRET}") for i in range(3)
            ]
            server.ctx.pipeline.ingest(server.project_id, records, "test")
            runtime = rules_for(server.ctx)
            runtime.service.run_once(now)
            runtime.dispatcher.drain(now)
            [message] = smtp.wait_for(1)
    seen = whole_text(message)
    assert "errors-per-customer" in message["Subject"]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for label in ("Rule: errors-per-customer", "Labels:", "Value:", "Threshold:", "Started:"):
        assert label in text
    assert SECRET not in seen and CUSTOMER not in seen and "example.org" in text


def test_notify_test_sends_the_seeds_test_email(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with SmtpReceiver(tmp_path) as server:
        for name, value in email_env(server).items():
            monkeypatch.setenv(name, value)
        code = main(["notify", "test", "--format", "json"])
        result = json.loads(capsys.readouterr().out)
        assert code == 0, result
        [message] = server.wait_for(1)
        assert main(["notify", "test", "--channel", "email", "--to", "someone@example.net"]) == 0
        out = capsys.readouterr().out
        assert server.envelopes[-1][1] == ["someone@example.net"]
    assert result["channel"] == "email" and result["delivered"] is True and result["smtp_reply"] == 250
    assert result["url"] == f"smtp://127.0.0.1:{server.port}"  # never the password
    assert "Payment Failure" in message["Subject"] and "Test Church" in whole_text(message)
    assert "SMTP reply" in out and "someone@example.net" in out


def test_notify_test_reports_a_permanent_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with SmtpReceiver(tmp_path, reject="550 5.7.1 relaying denied") as server:
        for name, value in email_env(server).items():
            monkeypatch.setenv(name, value)
        code = main(["notify", "test", "--channel", "email", "--format", "json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["delivered"] is False and result["permanent"] is True
    assert result["smtp_reply"] == 550 and "relaying denied" in result["error"]


#: One shape in nine of the redaction cast (each costs an SDK start and an SMTP transaction).
SAMPLED_SHAPES = SHAPES[::9]


@pytest.mark.parametrize(("name", "text", "needles"), SAMPLED_SHAPES, ids=[s[0] for s in SAMPLED_SHAPES])
def test_no_shape_of_the_redaction_cast_reaches_email(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, needles: list[str]
) -> None:
    with SmtpReceiver(tmp_path) as server:
        for variable, value in email_env(server).items():
            monkeypatch.setenv(variable, value)
        opswatch.init(environment="production", console=False)
        opswatch.get_logger("donations").error(
            f"charge failed: {text} (retrying)",
            {"operation": "payment.stripe.charge", "amount": 5},
            ValueError(f"upstream said {text}"),
        )
        assert opswatch.flush(10)
        [message] = server.wait_for(1)
    seen = whole_text(message)
    assert "charge failed" in seen and "upstream said" in seen  # the texts did arrive, redacted
    for needle in needles:
        assert needle not in seen, (name, needle)
