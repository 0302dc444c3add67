"""The alert sink: error and fatal records (already redacted) go through the routes to the notifier.

``write`` only queues the record (microseconds, whatever the webhook does); routing, templates and
delivery run on the notifier's thread. Records from the ``opswatch.alerts`` logger (delivery's own
reports) are never routed, so a failing channel cannot alert about itself in a loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..config import Settings
from ..record import FATAL, Record
from ..sinks import Sink
from .channels import Channel, EmailChannel, SlackChannel, WebhookChannel
from .delivery import Notifier
from .jobs import Request
from .routing import Router, router_from_settings
from .templates import alert_from_record

_OWN_LOGGER = "opswatch.alerts"


class RecordJob:
    """A queued record; on the worker thread it becomes one request per matching route."""

    __slots__ = ("record", "router")

    def __init__(self, record: Record, router: Router) -> None:
        self.record = record
        self.router = router

    def expand(self) -> Iterator[Request]:
        record = self.record
        for route in self.router.route(record):
            alert = alert_from_record(route.template, record, route.link_for(record))
            yield Request(alert, f"{route.name}:{alert.fingerprint}", route.channels)


class AlertSink(Sink):
    """Routes records to alerts. Without a router it takes no records (it only carries the notifier
    that ``send_slack_notification`` uses)."""

    name = "alerts"

    def __init__(self, notifier: Notifier, router: Router | None) -> None:
        super().__init__(router.level if router is not None else FATAL + 1)
        self.notifier = notifier
        self.router = router

    def write(self, record: Record) -> None:
        router = self.router
        if router is None:
            return
        logger = record.get("logger")
        if type(logger) is str and logger.startswith(_OWN_LOGGER):
            return
        if not self.notifier.submit(RecordJob(record, router)):
            self.dropped += 1

    def flush(self, timeout: float | None = None) -> bool:
        return self.notifier.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        self.notifier.close(timeout)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.notifier.stats()}


def channels_from_settings(settings: Settings) -> list[Channel]:
    """The Slack channel (``slack``), the generic webhook (``webhook``) and email (``email``) the settings
    configure. The server passes its own settings: they share these names."""
    channels: list[Channel] = []
    if settings.slack_webhook_url:
        channels.append(SlackChannel(settings.slack_webhook_url, name="slack", setting="slack_webhook_url"))
    if settings.alert_webhook_url:
        channels.append(
            WebhookChannel(
                settings.alert_webhook_url,
                secret=settings.alert_webhook_secret,
                name="webhook",
                setting="alert_webhook_url",
                secret_setting="alert_webhook_secret",
            )
        )
    if settings.smtp_url:
        channels.append(
            EmailChannel(
                settings.smtp_url,
                sender=settings.email_from,
                recipients=settings.email_to,
                ca_file=settings.smtp_ca_file,
                name="email",
            )
        )
    return channels


def from_settings(settings: Settings) -> AlertSink | None:
    """An alert sink when alerting is active (production or ``alerts_enabled``, and a channel configured).

    Raises ``ConfigError`` naming the setting (a bad URL or secret) or the route that is invalid.
    """
    if not settings.alerts_active:
        return None
    channels = channels_from_settings(settings)
    router = router_from_settings(settings, channels=[c.name for c in channels])
    return AlertSink(Notifier(channels), router)
