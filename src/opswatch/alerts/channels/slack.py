"""Slack incoming webhooks: Block Kit payloads, and Slack's answers sorted into retry or give up.

Slack answers 200 ``ok`` on success. ``invalid_blocks`` gets one text-only retry (the notifier does it);
``invalid_payload`` (400), ``action_prohibited`` (403), ``no_service``/``channel_not_found`` (404) and
``channel_is_archived`` (410) are permanent and disable the channel; 429 waits for ``Retry-After``;
5xx and connection errors are transient.
"""

from __future__ import annotations

from typing import ClassVar

import orjson

from ..blocks import slack_payload
from ..message import Alert
from .base import Answer, Channel, DeliveryError, answer_reason, judge_http


class SlackChannel(Channel):
    """A Slack incoming webhook (``https://hooks.slack.com/services/...``)."""

    kind: ClassVar[str] = "slack"

    def encode(self, alert: Alert, text_only: bool) -> tuple[bytes, dict[str, str]]:
        """Block Kit JSON with a plain-text fallback (or the text alone)."""
        body = orjson.dumps(slack_payload(alert, text_only=text_only))
        return body, {"content-type": "application/json; charset=utf-8"}

    def judge(self, answer: Answer) -> None:
        """Slack's rules on top of the generic HTTP ones."""
        if answer.status == 400:
            code = answer.body.strip()
            reason = answer_reason(answer)
            if code.startswith("invalid_blocks"):
                raise DeliveryError(reason, permanent=True, text_only=True, answer=answer)
            raise DeliveryError(reason, permanent=True, disable=code == "invalid_payload", answer=answer)
        judge_http(answer)
