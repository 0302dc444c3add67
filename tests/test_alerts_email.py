"""The email channel against a real SMTP server (aiosmtpd on 127.0.0.1, STARTTLS on a certificate made at
test time): what a message looks like, TLS and login, and which failures are permanent or retried."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from opswatch.alerts import Notifier, RetryPolicy, SlackNotifications
from opswatch.alerts.channels import CHANNELS, DeliveryError, EmailChannel
from opswatch.alerts.limits import (
    CUT_MARKER,
    EMAIL_MAX_ADDRESS,
    EMAIL_MAX_RECIPIENTS,
    EMAIL_MAX_SUBJECT,
    SMTP_MAX_TIMEOUT,
    SMTP_TIMEOUT,
)
from opswatch.alerts.mailbody import subject
from opswatch.alerts.message import Alert
from opswatch.config import ConfigError
from smtp_receiver import SmtpReceiver, free_port

SENDER = "opswatch@example.org"
TO = ["ops@example.org", "oncall@example.net"]


def channel_for(server: SmtpReceiver, **options: object) -> EmailChannel:
    settings: dict[str, object] = {"sender": SENDER, "recipients": TO, "ca_file": server.ca_file}
    settings.update(options)
    return EmailChannel(server.url(), **settings)  # type: ignore[arg-type]


def rule_alert() -> Alert:
    return SlackNotifications.alert(
        title="Rule high-error-rate is firing",
        message="error_ratio is above its critical threshold",
        fields={
            "Rule": "high-error-rate",
            "Labels": "service=checkout",
            "Value": "0.08",
            "Threshold": "> 0.05",
            "Started": "2026-12-03 14:00:00 UTC",
        },
        url="https://ops.example.org/alerts/rules/high-error-rate",
    )


def test_it_is_registered_as_a_channel_kind() -> None:
    assert CHANNELS["email"] is EmailChannel


def test_it_sends_an_alert_over_starttls_with_login_as_text_and_html(tmp_path: Path) -> None:
    with SmtpReceiver(tmp_path) as server:
        channel = channel_for(server)
        answer = channel.deliver(rule_alert())
        [message] = server.wait_for(1)
    assert answer.status == 250
    assert server.logins  # the server requires AUTH after STARTTLS: it happened
    assert server.envelopes == [(SENDER, TO)]
    assert message["From"] == SENDER and message["To"] == ", ".join(TO)
    assert message["Subject"] == (
        "[opswatch] 🔥 Rule high-error-rate is firing: error_ratio is above its critical threshold"
    )
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for piece in ("Rule: high-error-rate", "Labels: service=checkout", "Value: 0.08", "Threshold: > 0.05"):
        assert piece in text
    assert "Started: 2026-12-03 14:00:00 UTC" in text
    assert "https://ops.example.org/alerts/rules/high-error-rate" in text
    assert "<th" in html and "&gt; 0.05" in html and "service=checkout" in html
    assert '<a href="https://ops.example.org/alerts/rules/high-error-rate">' in html
    assert channel.status.sent == 1 and channel.status.last_success is not None
    assert channel.status.last_duration is not None and channel.status.last_error is None


def test_it_sends_over_tls_from_the_start_with_smtps(tmp_path: Path) -> None:
    with SmtpReceiver(tmp_path, implicit_tls=True) as server:
        channel = channel_for(server)
        assert channel.server.implicit_tls
        channel.deliver(rule_alert())
        assert len(server.wait_for(1)) == 1
        assert server.logins


def test_it_keeps_the_same_message_id_for_every_attempt_at_one_alert(tmp_path: Path) -> None:
    alert = rule_alert()
    with SmtpReceiver(tmp_path) as server:
        channel = channel_for(server)
        channel.deliver(alert)
        channel.deliver(alert)
        channel.deliver(rule_alert())
        first, again, other = server.wait_for(3)
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]
    assert first["Message-ID"].endswith("@example.org>")


def test_it_refuses_a_certificate_it_cannot_verify_and_marks_the_channel_failed(tmp_path: Path) -> None:
    with SmtpReceiver(tmp_path) as server:
        channel = channel_for(server, ca_file=None)  # the system CAs do not know the test's CA
        with pytest.raises(DeliveryError) as caught:
            channel.deliver(rule_alert())
        assert server.messages == []
    assert caught.value.permanent and caught.value.disable
    assert "certificate" in caught.value.reason
    assert channel.status.failed and channel.status.errors == 1


def test_it_treats_a_550_reply_as_permanent(tmp_path: Path) -> None:
    with SmtpReceiver(tmp_path, reject="550 5.7.1 relaying denied") as server:
        channel = channel_for(server)
        with pytest.raises(DeliveryError) as caught:
            channel.deliver(rule_alert())
    err = caught.value
    assert err.permanent and not err.disable
    assert err.answer is not None and err.answer.status == 550
    assert "550" in err.reason and "relaying denied" in err.reason
    assert channel.status.last_error == err.reason and channel.status.last_error_at is not None


def test_it_treats_a_451_reply_as_transient(tmp_path: Path) -> None:
    with (
        SmtpReceiver(tmp_path, reject="451 4.3.0 try again later") as server,
        pytest.raises(DeliveryError) as caught,
    ):
        channel_for(server).deliver(rule_alert())
    assert not caught.value.permanent and caught.value.answer is not None
    assert caught.value.answer.status == 451


def test_it_treats_a_refused_login_as_permanent_and_marks_the_channel_failed(tmp_path: Path) -> None:
    with SmtpReceiver(tmp_path) as server:
        channel = EmailChannel(
            server.url(password="wrong"), sender=SENDER, recipients=TO, ca_file=server.ca_file
        )
        with pytest.raises(DeliveryError) as caught:
            channel.deliver(rule_alert())
        assert server.messages == []
    assert caught.value.permanent and caught.value.disable
    assert "login refused" in caught.value.reason and "535" in caught.value.reason
    assert "wrong" not in caught.value.reason


def test_it_treats_a_refused_connection_as_transient() -> None:
    port = free_port()  # nothing listens there any more
    channel = EmailChannel(f"smtp://127.0.0.1:{port}", sender=SENDER, recipients=TO, timeout=2)
    with pytest.raises(DeliveryError) as caught:
        channel.deliver(rule_alert())
    assert not caught.value.permanent
    assert f"smtp://127.0.0.1:{port}" in caught.value.reason


def test_the_notifier_retries_a_connection_dropped_during_data_and_delivers(tmp_path: Path) -> None:
    with SmtpReceiver(tmp_path, drop_first=1) as server:
        notifier = Notifier([channel_for(server)], pace=0, retry=RetryPolicy(initial=0.01, maximum=0.05))
        try:
            delivery = notifier.send(rule_alert())
            assert delivery.wait(30)
            stats = notifier.stats()
        finally:
            notifier.close()
        assert delivery.state == "delivered"
        assert server.attempts == 2 and len(server.messages) == 1
    assert stats["retries"] == 1 and stats["sent"] == 1
    assert stats["channels"]["email"]["errors"] == 1


def test_the_notifier_does_not_retry_a_550(tmp_path: Path) -> None:
    with SmtpReceiver(tmp_path, reject="550 5.1.1 no such user") as server:
        notifier = Notifier([channel_for(server)], pace=0, retry=RetryPolicy(initial=0.01, maximum=0.05))
        try:
            delivery = notifier.send(rule_alert())
            assert delivery.wait(30)
        finally:
            notifier.close()
        assert delivery.state == "failed" and delivery.error is not None and "550" in delivery.error
        assert server.attempts == 1


# -- header injection -------------------------------------------------------------------------------


def test_event_text_with_line_breaks_cannot_add_a_header(tmp_path: Path) -> None:
    alert = SlackNotifications.alert(
        title="boom\r\nBcc: victim@example.com\r\nX-Evil: 1",
        message="line one\nSubject: forged",
        error="trace\r\n\r\nbody",
    )
    with SmtpReceiver(tmp_path) as server:
        channel_for(server).deliver(alert)
        [message] = server.wait_for(1)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert server.envelopes == [(SENDER, TO)]
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert message["Subject"].startswith("[opswatch] 🔥 boom Bcc: victim@example.com X-Evil: 1")


@pytest.mark.parametrize(
    "address",
    [
        "ops@example.org\r\nBcc: victim@example.com",
        "Ops <ops@example.org>",
        "a@example.org, b@example.org",
        "ops",
    ],
)
def test_it_refuses_an_address_that_is_not_one_plain_address(address: str) -> None:
    with pytest.raises(ConfigError) as caught:
        EmailChannel("smtp://mail.example.org", sender=address, recipients=TO)
    assert caught.value.setting == "email_from"
    with pytest.raises(ConfigError) as caught:
        EmailChannel("smtp://mail.example.org", sender=SENDER, recipients=[address])
    assert caught.value.setting == "email_to"


# -- configuration and limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://user:hunter2@mail.example.org", "scheme"),
        ("smtp://user:hunter2@", "no host"),
        ("smtp://user:hunter2@mail.example.org:99999", "port"),
        ("smtp://user:hunter2@mail.example.org/inbox", "path"),
    ],
)
def test_it_names_the_setting_of_a_bad_smtp_url_without_echoing_its_password(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        EmailChannel(url, sender=SENDER, recipients=TO)
    assert caught.value.setting == "smtp_url" and problem in caught.value.problem
    assert "hunter2" not in str(caught.value)


def test_it_reads_credentials_and_default_ports_from_the_url() -> None:
    channel = EmailChannel("smtp://alerts:p%40ss%3Aword@mail.example.org", sender=SENDER, recipients=TO)
    assert (channel.server.host, channel.server.port) == ("mail.example.org", 587)
    assert (channel.server.username, channel.server.password) == ("alerts", "p@ss:word")
    assert channel.url == "smtp://mail.example.org:587" and "p@ss" not in repr(channel)
    secure = EmailChannel("smtps://mail.example.org", sender=SENDER, recipients=TO)
    assert secure.server.port == 465 and secure.server.implicit_tls


@pytest.mark.parametrize("timeout", [0, -1, SMTP_MAX_TIMEOUT + 0.1, None, float("inf")])
def test_its_timeout_can_be_shortened_but_never_removed(timeout: object) -> None:
    with pytest.raises(ConfigError):
        EmailChannel("smtp://mail.example.org", sender=SENDER, recipients=TO, timeout=timeout)  # type: ignore[arg-type]
    assert (
        EmailChannel("smtp://h.example.org", sender=SENDER, recipients=TO, timeout=SMTP_MAX_TIMEOUT).timeout
        == 30
    )


def test_it_takes_at_most_the_limit_of_recipients() -> None:
    many = [f"r{i}@example.org" for i in range(EMAIL_MAX_RECIPIENTS)]
    assert len(EmailChannel("smtp://h.example.org", sender=SENDER, recipients=many).recipients) == len(many)
    with pytest.raises(ConfigError) as caught:
        EmailChannel("smtp://h.example.org", sender=SENDER, recipients=[*many, "one@example.org"])
    assert caught.value.setting == "email_to" and str(EMAIL_MAX_RECIPIENTS) in caught.value.problem


def test_the_subject_is_one_line_of_at_most_the_limit() -> None:
    alert = SlackNotifications.alert(title="Slow checkout", message="x" * 500)
    fits = subject(alert)
    assert len(fits) == EMAIL_MAX_SUBJECT and fits.endswith(CUT_MARKER)
    assert fits.startswith("[opswatch] 🔥 Slow checkout: xxx")
    short = SlackNotifications.alert(title="T", message="y" * (EMAIL_MAX_SUBJECT - len("[opswatch] 🔥 T: ")))
    assert len(subject(short)) == EMAIL_MAX_SUBJECT and CUT_MARKER not in subject(short)
    assert len(subject(SlackNotifications.alert(title="t" * 500))) == EMAIL_MAX_SUBJECT


def test_it_refuses_a_server_without_starttls_before_sending_anything(tmp_path: Path) -> None:
    with SmtpReceiver(tmp_path, starttls=False) as server:
        channel = channel_for(server)
        with pytest.raises(DeliveryError) as caught:
            channel.deliver(rule_alert())
        assert server.messages == [] and server.logins == []
    assert caught.value.permanent and caught.value.disable and "STARTTLS" in caught.value.reason


@pytest.mark.parametrize(
    ("reply", "permanent"), [("550 5.1.1 no such user", True), ("452 4.2.2 mailbox full", False)]
)
def test_it_sorts_refused_recipients_by_their_reply(tmp_path: Path, reply: str, permanent: bool) -> None:
    with SmtpReceiver(tmp_path, reject_rcpt=reply) as server:
        with pytest.raises(DeliveryError) as caught:
            channel_for(server).deliver(rule_alert())
        assert server.messages == []
    assert caught.value.permanent is permanent and reply.split()[0] in caught.value.reason


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and then closes them at once (``drop``) or
    never says anything (hang)."""

    def __init__(self, *, drop: bool) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.drop = drop
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.drop:
                conn.close()
            else:
                self.held.append(conn)

    def __enter__(self) -> SilentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_it_treats_a_connection_dropped_before_the_greeting_as_transient() -> None:
    with SilentServer(drop=True) as server:
        channel = EmailChannel(f"smtp://127.0.0.1:{server.port}", sender=SENDER, recipients=TO)
        with pytest.raises(DeliveryError) as caught:
            channel.deliver(rule_alert())
    assert not caught.value.permanent and not caught.value.disable
    assert channel.status.errors == 1 and not channel.status.failed


def test_a_server_that_never_answers_times_out_as_a_transient_failure() -> None:
    with SilentServer(drop=False) as server:
        channel = EmailChannel(f"smtp://127.0.0.1:{server.port}", sender=SENDER, recipients=TO, timeout=0.3)
        with pytest.raises(DeliveryError) as caught:
            channel.deliver(rule_alert())
    assert not caught.value.permanent and caught.value.reason.startswith("timed out")


def test_it_names_smtp_ca_file_when_the_ca_bundle_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        EmailChannel("smtp://h.example.org", sender=SENDER, recipients=TO, ca_file=str(tmp_path / "none.pem"))
    assert caught.value.setting == "smtp_ca_file"


def test_event_text_is_escaped_in_the_html_part_and_only_http_links_are_links(tmp_path: Path) -> None:
    alert = SlackNotifications.alert(
        title="<script>alert(1)</script>",
        message='<img src=x onerror="steal()">',
        url="javascript:alert(1)",
    )
    with SmtpReceiver(tmp_path) as server:
        channel_for(server).deliver(alert)
        [message] = server.wait_for(1)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "href" not in html and "javascript:alert(1)" in html  # shown as text, not a link


def test_an_address_may_be_as_long_as_the_limit_and_no_longer() -> None:
    domain = "@example.org"
    longest = "a" * (EMAIL_MAX_ADDRESS - len(domain)) + domain
    assert EmailChannel("smtp://h.example.org", sender=longest, recipients=TO).sender == longest
    with pytest.raises(ConfigError) as caught:
        EmailChannel("smtp://h.example.org", sender="a" + longest, recipients=TO)
    assert caught.value.setting == "email_from" and str(EMAIL_MAX_ADDRESS) in caught.value.problem


def test_the_default_timeout_is_the_limits_table_value() -> None:
    assert EmailChannel("smtp://h.example.org", sender=SENDER, recipients=TO).timeout == SMTP_TIMEOUT
