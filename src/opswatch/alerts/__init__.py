"""Alerts: Slack templates, routing rules, and delivery that never blocks.

- ``SlackNotifications.payment_failed(...)`` and the other templates build an ``Alert``;
  ``opswatch.send_slack_notification(alert)`` sends it (returns at once; ``wait=True`` for scripts).
- With alerting on (production, or ``OPSWATCH_ALERTS_ENABLED=true``, and a channel configured), error and
  fatal records go through the routes (``routing``; default: the seed's table) to the channels.
- ``Notifier`` is the delivery core, shared with the server: a bounded queue, one background thread,
  pacing, repeat counting, folding of bursts, retries, permanent-error handling (``delivery``).
- Channels (``channels``): Slack incoming webhooks, Standard-Webhooks-signed JSON webhooks, and email
  over SMTP with STARTTLS (``channels.email``).
- ``opswatch.alerts.testing``: an in-memory transport, a manual clock and ``capture_alerts()``.
"""

from __future__ import annotations

from .channels import CHANNELS, Answer, Channel, ChannelStatus, DeliveryError, SlackChannel, WebhookChannel
from .delivery import Notifier
from .jobs import Delivery, Request
from .message import Alert, fold
from .pacing import RetryPolicy
from .routing import DEFAULT_ROUTES, Route, Router, default_routes, load_routes_file, parse_routes
from .templates import SlackNotifications

__all__ = [
    "CHANNELS",
    "DEFAULT_ROUTES",
    "Alert",
    "Answer",
    "Channel",
    "ChannelStatus",
    "Delivery",
    "DeliveryError",
    "Notifier",
    "Request",
    "RetryPolicy",
    "Route",
    "Router",
    "SlackChannel",
    "SlackNotifications",
    "WebhookChannel",
    "default_routes",
    "fold",
    "load_routes_file",
    "parse_routes",
]
