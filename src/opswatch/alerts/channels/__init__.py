"""Alert channels, one module each, registered by kind in ``CHANNELS`` (a plain dict).

``CHANNELS["slack"](url)``, ``CHANNELS["webhook"](url, secret=...)`` and
``CHANNELS["email"](smtp_url, sender=..., recipients=[...])`` build channels; the notifier
only needs ``deliver(alert, text_only=...)``, ``status`` and ``close()``. A new channel is a subclass of
``Channel`` with ``encode`` (and ``judge`` when its answers need more than HTTP status rules); a channel
that does not speak HTTP (email) overrides ``attempt`` instead.
"""

from __future__ import annotations

from .base import (
    Answer,
    Channel,
    ChannelStatus,
    DeliveryError,
    Transport,
    TransportError,
    validate_url,
)
from .email import EmailChannel
from .slack import SlackChannel
from .webhook import WebhookChannel

#: Channel kinds by name.
CHANNELS: dict[str, type[Channel]] = {
    "slack": SlackChannel,
    "webhook": WebhookChannel,
    "email": EmailChannel,
}

__all__ = [
    "CHANNELS",
    "Answer",
    "Channel",
    "ChannelStatus",
    "DeliveryError",
    "EmailChannel",
    "SlackChannel",
    "Transport",
    "TransportError",
    "WebhookChannel",
    "validate_url",
]
