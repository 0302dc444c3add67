"""A real SMTP server on 127.0.0.1 for the email channel's tests: aiosmtpd, with STARTTLS (or TLS from the
start) on a certificate from a throwaway CA that ``trustme`` makes at test time.

``SmtpReceiver(tmp_path)`` accepts mail (STARTTLS required, AUTH as ``USER``/``PASSWORD`` required);
``reject="550 5.7.1 relay denied"`` answers every ``DATA`` with that reply, ``reject_rcpt`` every
``RCPT``; ``drop_first=1`` drops the connection at the first ``DATA`` (no reply at all);
``starttls=False`` offers no STARTTLS (and so no AUTH). ``messages`` are the parsed messages received,
``envelopes`` their (sender, recipients); ``ca_file`` is the PEM the client must trust.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER = "alerts"
PASSWORD = "p@ss:word/1"  # characters that must be percent-encoded in the URL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, owner: SmtpReceiver) -> None:
        self.owner = owner

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.owner.reject_rcpt:
            return self.owner.reject_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        owner = self.owner
        with owner.lock:
            owner.attempts += 1
            attempt = owner.attempts
        if attempt <= owner.drop_first:
            server.transport.close()  # the connection drops after the data, before any reply
            return "451 4.3.0 dropped"
        if owner.reject:
            return owner.reject
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with owner.lock:
            owner.messages.append(message)
            owner.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            owner.lock.notify_all()
        return "250 2.0.0 queued"


class SmtpReceiver:
    def __init__(
        self,
        tmp_path: Path,
        *,
        implicit_tls: bool = False,
        reject: str | None = None,
        reject_rcpt: str | None = None,
        drop_first: int = 0,
        starttls: bool = True,
    ) -> None:
        self.reject = reject
        self.reject_rcpt = reject_rcpt
        self.drop_first = drop_first
        self.attempts = 0
        self.implicit_tls = implicit_tls
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self.lock = threading.Condition()
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = str(tmp_path / "smtp-ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.port = free_port()
        options: dict[str, Any] = {
            "authenticator": self._authenticate,
            "auth_required": True,
            "auth_require_tls": True,
        }
        if not starttls:
            options.update(auth_required=False)
        elif implicit_tls:
            # aiosmtpd counts only STARTTLS as TLS for AUTH (and warns about requiring it otherwise); the
            # whole connection is TLS here, AUTH is offered, and the tests check that the client used it
            options.update(ssl_context=context, auth_require_tls=False, auth_required=False)
        else:
            options.update(tls_context=context, require_starttls=True)
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **options)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == USER.encode()
            and data.password == PASSWORD.encode()
        )
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok, handled=False)

    def url(self, user: str = USER, password: str = PASSWORD) -> str:
        from urllib.parse import quote

        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        with self.lock:
            self.lock.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
