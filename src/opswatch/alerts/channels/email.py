"""Email over SMTP: STARTTLS (``smtp://``, port 587 by default) or implicit TLS (``smtps://``, port 465).

``EmailChannel("smtp://user:pass@host:587", sender="ops@example.org", recipients=["a@example.org"])``
sends each alert as one multipart message (plain text and simple HTML, ``mailbody``). TLS is required and
verified: an ``smtp://`` server that does not offer STARTTLS is refused (credentials never travel in
clear), and the certificate is checked against the system's CAs or ``ca_file``. Every network operation
has a timeout (``limits.SMTP_TIMEOUT``, at most ``SMTP_MAX_TIMEOUT``) that callers cannot remove.

Failures are sorted as the notifier needs them: a 5xx reply is permanent (retrying the same message gets
the same answer); a failed login, a server without STARTTLS or a certificate that does not verify also
disable the channel (it is misconfigured); a 4xx reply, a refused or dropped connection and a timeout
are transient and retried. One connection per message; ``status`` records the last error, the last
success and how long the send took, as for the HTTP channels.

Addresses come from settings and are checked when the channel is built (one address each, no line
breaks); event text only reaches the subject and bodies, where ``mailbody`` keeps it to one line and
escaped. The ``Message-ID`` is the same for every attempt at one message, so a retry after a connection
dropped at the end of ``DATA`` can be recognised as a duplicate.
"""

from __future__ import annotations

import dataclasses
import smtplib
import socket
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, parseaddr
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from ...config import ConfigError
from ..limits import EMAIL_MAX_ADDRESS, EMAIL_MAX_RECIPIENTS, SMTP_MAX_TIMEOUT, SMTP_TIMEOUT
from ..mailbody import html_body, plain_text, subject
from ..message import Alert, cut
from .base import Answer, Channel, ChannelStatus, DeliveryError
from .webhook import message_id_for

DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


@dataclasses.dataclass(frozen=True)
class SmtpServer:
    """A parsed ``smtp_url``. ``shown`` leaves the credentials out (for errors, the CLI and ``repr``)."""

    implicit_tls: bool
    host: str
    port: int
    username: str | None
    password: str | None = dataclasses.field(repr=False)

    @property
    def shown(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def parse_smtp_url(url: object, setting: str = "smtp_url") -> SmtpServer:
    """Check ``smtp://[user:pass@]host[:port]`` or ``smtps://...``; ``ConfigError`` naming ``setting``
    (never echoing the URL, which carries a password) when it is not one."""
    if not isinstance(url, str) or not url:
        raise ConfigError(setting, "expected smtp://user:pass@host:587 or smtps://user:pass@host:465")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ConfigError(setting, "the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(setting, "not a valid URL (bad port or host)") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise ConfigError(setting, f"expected scheme smtp (STARTTLS) or smtps (TLS), got {parts.scheme!r}")
    if not parts.hostname:
        raise ConfigError(setting, "the URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(setting, "the URL must have no path, query or fragment")
    return SmtpServer(
        implicit_tls=parts.scheme == "smtps",
        host=parts.hostname,
        port=port or DEFAULT_PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def check_address(value: object, setting: str) -> str:
    """One bare address (``ops@example.org``); ``ConfigError`` for line breaks, display names, lists."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(setting, "expected an email address such as ops@example.org")
    address = value.strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in address):
        raise ConfigError(setting, "an address must not contain line breaks or control characters")
    if len(address) > EMAIL_MAX_ADDRESS:
        raise ConfigError(setting, f"an address is at most {EMAIL_MAX_ADDRESS} characters")
    name, parsed = parseaddr(address)
    local, at, domain = address.rpartition("@")
    if (
        name
        or parsed != address
        or not at
        or not local
        or "." not in domain
        or any(ch in address for ch in ' ,;<>()[]"\\')
    ):
        raise ConfigError(setting, f"expected one plain address such as ops@example.org, got {address!r}")
    return address


def check_recipients(values: object, setting: str) -> tuple[str, ...]:
    """A non-empty list of at most ``EMAIL_MAX_RECIPIENTS`` addresses (a string is split at commas)."""
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    if not isinstance(values, Sequence) or not values:
        raise ConfigError(setting, "expected one or more addresses (a list, or text separated by commas)")
    if len(values) > EMAIL_MAX_RECIPIENTS:
        raise ConfigError(setting, f"at most {EMAIL_MAX_RECIPIENTS} recipients, got {len(values)}")
    return tuple(check_address(v, setting) for v in values)


def check_smtp_timeout(timeout: object, setting: str) -> float:
    """Positive and at most ``SMTP_MAX_TIMEOUT`` seconds: the timeout can be shortened, never removed."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= SMTP_MAX_TIMEOUT
    ):
        raise ConfigError(setting, f"timeout must be a number of seconds in (0, {SMTP_MAX_TIMEOUT:g}]")
    return float(timeout)


class EmailChannel(Channel):
    """Sends alerts as email through one SMTP server (see the module docs for TLS and error rules)."""

    kind: ClassVar[str] = "email"

    def __init__(
        self,
        url: str,
        *,
        sender: str | None,
        recipients: Sequence[str] | str | None,
        ca_file: str | None = None,
        name: str | None = None,
        timeout: float = SMTP_TIMEOUT,
        setting: str = "smtp_url",
        sender_setting: str = "email_from",
        recipients_setting: str = "email_to",
    ) -> None:
        # No call to Channel.__init__: that one checks an http(s) URL and builds an HTTP transport.
        self.server = parse_smtp_url(url, setting)
        self.url = self.server.shown
        self.name = name or self.kind
        self.timeout = check_smtp_timeout(timeout, setting)
        self.sender = check_address(sender, sender_setting)
        self.recipients = check_recipients(recipients, recipients_setting)
        self.ca_file = ca_file
        try:
            self._tls = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(
                "smtp_ca_file", f"cannot load CA certificates from {ca_file!r} ({err})"
            ) from None
        self.status = ChannelStatus()

    def compose(self, alert: Alert) -> EmailMessage:
        """The message for ``alert``: headers, then plain text with an HTML alternative."""
        message = EmailMessage(policy=SMTP_POLICY)
        message["Subject"] = subject(alert)
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = formatdate(alert.timestamp, usegmt=True)
        domain = self.sender.rpartition("@")[2]
        message["Message-ID"] = f"<{message_id_for(alert)}@{domain}>"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to alerts
        message["X-Opswatch-Fingerprint"] = alert.fingerprint
        message.set_content(plain_text(alert))
        message.add_alternative(html_body(alert), subtype="html")
        return message

    def encode(self, alert: Alert, text_only: bool) -> tuple[bytes, dict[str, str]]:
        """The message as bytes (what ``DATA`` carries), with no extra transport headers."""
        return self.compose(alert).as_bytes(), {}

    def attempt(self, alert: Alert, text_only: bool) -> Answer:
        """Send ``alert`` once over a new connection; the server's acceptance, or ``DeliveryError``."""
        message = self.compose(alert)
        server = self.server
        smtp: smtplib.SMTP | None = None
        local = socket.gethostname() or "localhost"  # not getfqdn(): that can wait on DNS for seconds
        try:
            if server.implicit_tls:
                smtp = smtplib.SMTP_SSL(
                    server.host, server.port, local_hostname=local, timeout=self.timeout, context=self._tls
                )
                smtp.ehlo()
            else:
                smtp = smtplib.SMTP(server.host, server.port, local_hostname=local, timeout=self.timeout)
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(
                        f"{server.shown} does not offer STARTTLS; refusing to send without TLS",
                        permanent=True,
                        disable=True,
                    )
                smtp.starttls(context=self._tls)
                smtp.ehlo()
            if server.username:
                smtp.login(server.username, server.password or "")
            refused = smtp.send_message(message, self.sender, list(self.recipients))
            if refused:  # some recipients took it: delivered, and say which did not
                self.status.last_error = "refused: " + ", ".join(sorted(refused))
            return Answer(status=250, body=f"accepted for {len(self.recipients) - len(refused)} recipients")
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as err:
            raise DeliveryError(_reason("login refused", err), permanent=True, disable=True) from None
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            detail = "; ".join(f"{rcpt}: {c} {_text(m)}" for rcpt, (c, m) in err.recipients.items())
            raise DeliveryError(
                cut(f"every recipient refused: {detail}", 500), permanent=all(c >= 500 for c in codes)
            ) from None
        except smtplib.SMTPResponseException as err:
            code = err.smtp_code
            answer = Answer(status=code, body=_text(err.smtp_error))
            raise DeliveryError(_reason("refused", err), permanent=code >= 500, answer=answer) from None
        except smtplib.SMTPNotSupportedError as err:
            raise DeliveryError(
                f"not supported by {server.shown}: {err}", permanent=True, disable=True
            ) from None
        except ssl.SSLCertVerificationError as err:
            reason = f"the certificate of {server.shown} does not verify ({err.verify_message})"
            raise DeliveryError(reason, permanent=True, disable=True) from None
        except (smtplib.SMTPException, OSError) as err:  # dropped, refused, timed out, TLS broke
            # smtplib turns a timeout while reading a reply into SMTPServerDisconnected; the cause tells
            timed_out = isinstance(err, TimeoutError) or isinstance(err.__context__, TimeoutError)
            kind = "timed out" if timed_out else "no answer"
            detail = str(err) or type(err).__name__
            raise DeliveryError(f"{kind}: {server.shown}: {detail}", permanent=False) from None
        finally:
            if smtp is not None:
                _quit(smtp)

    def close(self) -> None:
        """Nothing to release: each message has its own connection."""

    def __repr__(self) -> str:
        return f"<EmailChannel {self.name} {self.url}>"


def _text(reply: bytes | str) -> str:
    raw = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return cut(" ".join(raw.split()), 300)


def _reason(what: str, err: smtplib.SMTPResponseException) -> str:
    return f"{what}: SMTP {err.smtp_code} {_text(err.smtp_error)}"


def _quit(smtp: smtplib.SMTP) -> None:
    """QUIT politely; the message is already accepted, so a failure here changes nothing."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
