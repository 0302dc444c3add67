"""What every channel shares: the transport seam, delivery errors, channel status, URL validation.

A channel turns an ``Alert`` into one HTTP request and judges the answer (``attempt``; the email channel
overrides it with one SMTP transaction). Failures are ``DeliveryError``s
that say whether they are *permanent* (retrying cannot help; with ``disable`` the channel itself is
broken: revoked webhook, archived channel) or *transient* (connection error, timeout, 5xx, 429). The
channel records ``last_error``, ``last_success`` and how long the last send took in its ``status``.

The transport is a one-method seam (``post``): ``HttpTransport`` speaks HTTP with a fixed timeout and no
redirects; ``opswatch.alerts.testing.MemoryTransport`` answers in memory for users' tests.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from ...config import ConfigError
from ..limits import HTTP_MAX_TIMEOUT, HTTP_TIMEOUT, MAX_ANSWER_BODY, MAX_URL_LENGTH
from ..message import Alert, cut


@dataclasses.dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers (lower-case names) and the start of the body as text."""

    status: int
    body: str = ""
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


class TransportError(Exception):
    """The request got no answer: connection refused or reset, DNS failure, timeout."""


class Transport(Protocol):
    """Sends one POST and returns the answer; raises ``TransportError`` when there is none."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer: ...

    def close(self) -> None: ...


class DeliveryError(Exception):
    """A failed delivery. ``permanent`` means retrying the same message cannot help; ``disable`` that the
    channel is broken (the notifier stops using it); ``retry_after`` that the endpoint asked us to wait
    (rate limited); ``text_only`` that the message should be retried once without blocks."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        disable: bool = False,
        retry_after: float | None = None,
        text_only: bool = False,
        answer: Answer | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.disable = disable
        self.retry_after = retry_after
        self.text_only = text_only
        self.answer = answer

    @property
    def rate_limited(self) -> bool:
        """True for a 429: such a message is waited for, never dropped."""
        return self.answer is not None and self.answer.status == 429


@dataclasses.dataclass
class ChannelStatus:
    """What a channel did last: for the dashboard, ``stats()`` and ``opswatch notify test``."""

    failed: bool = False
    last_error: str | None = None
    last_error_at: float | None = None
    last_success: float | None = None
    last_duration: float | None = None
    sent: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return dataclasses.asdict(self)


def validate_url(url: object, setting: str) -> str:
    """Check a webhook URL at configuration time; raise ``ConfigError`` naming ``setting`` when it is bad."""
    if not isinstance(url, str) or not url:
        raise ConfigError(setting, "expected an http(s) URL")
    if len(url) > MAX_URL_LENGTH:
        raise ConfigError(setting, f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ConfigError(setting, "the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as err:
        raise ConfigError(setting, f"not a valid URL ({err})") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(setting, f"expected an http(s) URL, got scheme {parts.scheme!r}")
    if not parts.hostname:
        raise ConfigError(setting, "the URL has no host")
    if parts.fragment:
        raise ConfigError(setting, "the URL has a #fragment, which is never sent: remove it")
    return url


def check_timeout(timeout: float, setting: str) -> float:
    """A webhook timeout must be positive and at most ``HTTP_MAX_TIMEOUT`` seconds: it cannot be removed."""
    if not isinstance(timeout, int | float) or not 0 < timeout <= HTTP_MAX_TIMEOUT:
        raise ConfigError(setting, f"timeout must be a number of seconds in (0, {HTTP_MAX_TIMEOUT:g}]")
    return float(timeout)


def retry_after_seconds(value: str | None) -> float | None:
    """The seconds in a ``Retry-After`` header (a number or an HTTP date), or None when absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Channel:
    """Base class: POST ``encode(alert)`` to ``url`` through the transport and judge the answer."""

    kind: ClassVar[str] = "channel"

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        transport: Transport | None = None,
        timeout: float = HTTP_TIMEOUT,
        setting: str | None = None,
    ) -> None:
        where = setting or f"{name or self.kind} url"
        self.url = validate_url(url, where)
        self.name = name or self.kind
        self.timeout = check_timeout(timeout, where)
        if transport is None:
            from ._http import HttpTransport

            transport = HttpTransport()
        self.transport: Transport = transport
        self.status = ChannelStatus()

    def encode(self, alert: Alert, text_only: bool) -> tuple[bytes, dict[str, str]]:
        """The request body and headers for ``alert``."""
        raise NotImplementedError

    def judge(self, answer: Answer) -> None:
        """Raise ``DeliveryError`` unless ``answer`` means delivered (generic HTTP rules)."""
        judge_http(answer)

    def attempt(self, alert: Alert, text_only: bool) -> Answer:
        """One send of ``alert`` (HTTP here: POST ``encode`` and ``judge`` the answer); ``DeliveryError``
        when it failed. Channels that are not HTTP override this, and ``deliver`` keeps ``status``."""
        body, headers = self.encode(alert, text_only)
        try:
            answer = self.transport.post(self.url, body, headers, self.timeout)
        except TransportError as err:
            raise DeliveryError(f"no answer: {err}", permanent=False) from None
        self.judge(answer)
        return answer

    def deliver(self, alert: Alert, *, text_only: bool = False) -> Answer:
        """Send ``alert`` once; return the answer or raise ``DeliveryError``. Updates ``status``."""
        started = time.perf_counter()
        try:
            answer = self.attempt(alert, text_only)
        except DeliveryError as err:
            self._failed(err, started)
            raise
        self.status.last_duration = time.perf_counter() - started
        self.status.last_success = time.time()
        self.status.sent += 1
        return answer

    def _failed(self, err: DeliveryError, started: float) -> None:
        status = self.status
        status.last_duration = time.perf_counter() - started
        status.last_error = err.reason
        status.last_error_at = time.time()
        status.errors += 1
        if err.disable:
            status.failed = True

    def close(self) -> None:
        """Release the transport."""
        self.transport.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def answer_reason(answer: Answer) -> str:
    """``HTTP 404 no_service``: the status and the start of the body."""
    body = " ".join(answer.body.split())
    return f"HTTP {answer.status} {cut(body, 200)}".rstrip()


def judge_http(answer: Answer) -> None:
    """Generic rules: 2xx delivered; 429 wait; 408/425/5xx transient; 3xx (redirects are never followed),
    401/403/404/410 disable the channel; any other 4xx is permanent for this message."""
    status = answer.status
    if 200 <= status < 300:
        return
    reason = answer_reason(answer)
    if status == 429:
        raise DeliveryError(
            reason,
            permanent=False,
            retry_after=retry_after_seconds(answer.headers.get("retry-after")),
            answer=answer,
        )
    if status in (408, 425) or status >= 500:
        raise DeliveryError(reason, permanent=False, answer=answer)
    if 300 <= status < 400:
        where = answer.headers.get("location", "")
        raise DeliveryError(
            f"{reason} (redirect to {where!r} not followed)", permanent=True, disable=True, answer=answer
        )
    raise DeliveryError(reason, permanent=True, disable=status in (401, 403, 404, 410), answer=answer)


def clip_body(raw: bytes) -> str:
    """The start of an answer body as text, for errors and the CLI."""
    return raw[:MAX_ANSWER_BODY].decode("utf-8", "replace")
