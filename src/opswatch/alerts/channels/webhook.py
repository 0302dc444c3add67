"""A generic JSON webhook, signed the Standard Webhooks way.

The body is ``{"type": "alert", "timestamp": ..., "data": <alert>}``. With a secret (``whsec_`` followed by
base64 key bytes), each request carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``; receivers verify it with any
Standard Webhooks library. A retry of the same message keeps its ``webhook-id`` (receivers dedupe on it)
and is signed again with a fresh timestamp.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from typing import ClassVar

import orjson

from ...config import ConfigError
from ..limits import HTTP_TIMEOUT
from ..message import Alert
from .base import Channel, Transport

SECRET_PREFIX = "whsec_"


def parse_secret(secret: str, setting: str = "alert_webhook_secret") -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret; ``ConfigError`` naming ``setting`` when malformed."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ConfigError(setting, "expected a Standard Webhooks secret: 'whsec_' followed by base64")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(setting, "the part after 'whsec_' is not valid base64") from None
    if not 24 <= len(key) <= 64:
        raise ConfigError(setting, f"the key must be 24 to 64 bytes, got {len(key)}")
    return key


def new_secret() -> str:
    """A fresh random ``whsec_`` secret (32 key bytes)."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def message_id_for(alert: Alert) -> str:
    """A ``webhook-id`` that is the same for every attempt at one message and differs between messages."""
    identity = f"{alert.fingerprint}|{alert.timestamp!r}|{alert.more}|{alert.folded}|{alert.occurrences}"
    return "msg_" + hashlib.sha256(identity.encode()).hexdigest()[:26]


class WebhookChannel(Channel):
    """POSTs each alert as JSON to any URL, signed when a secret is set."""

    kind: ClassVar[str] = "webhook"

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        name: str | None = None,
        transport: Transport | None = None,
        timeout: float = HTTP_TIMEOUT,
        setting: str | None = None,
        secret_setting: str = "secret",
    ) -> None:
        self._key = None if secret is None else parse_secret(secret, secret_setting)
        super().__init__(url, name=name, transport=transport, timeout=timeout, setting=setting)

    def encode(self, alert: Alert, text_only: bool) -> tuple[bytes, dict[str, str]]:
        """The JSON body and the Standard Webhooks headers."""
        timestamp = int(time.time())
        body = orjson.dumps({"type": "alert", "timestamp": timestamp, "data": alert.as_dict()})
        message_id = message_id_for(alert)
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
        }
        if self._key is not None:
            headers["webhook-signature"] = sign(self._key, message_id, timestamp, body)
        return body, headers
