"""Slack mrkdwn injection: event text reaches Slack as the characters it is, never as a mention or a link.

Slack reads ``<!here>`` as a mention of everyone online and ``<http://evil.example|details>`` as a link
labelled "details"; ``&``, ``<`` and ``>`` must arrive as ``&amp;``, ``&lt;``, ``&gt;`` in every text Slack
reads as mrkdwn: the blocks, the top-level ``text`` that notifications show, and the text-only retry
after ``invalid_blocks``.
"""

from __future__ import annotations

import json
from typing import Any

from alerts_http import ScriptedServer
from opswatch.alerts import Notifier, RetryPolicy, SlackChannel, SlackNotifications

HOSTILE = "card declined <!here> see <http://evil.example|details> & <@U123>"
FAST_RETRY = RetryPolicy(max_attempts=3, initial=0.01, maximum=0.05)


def hostile_alert() -> Any:
    return SlackNotifications.payment_failed(amount=100, church_name="<!channel> Baptist", error=HOSTILE)


def mrkdwn_texts(payload: dict[str, Any]) -> list[str]:
    """Every string Slack reads as mrkdwn: the top-level text and each mrkdwn element of the blocks."""
    texts = [payload["text"]]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "mrkdwn":
                texts.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(payload.get("blocks", []))
    return texts


def assert_inert(text: str) -> None:
    assert "<" not in text and ">" not in text, text
    assert "&" not in text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", ""), text


def test_it_escapes_mentions_and_links_in_the_text_and_every_block() -> None:
    with ScriptedServer([(200, "ok")]) as slack:
        channel = SlackChannel(slack.url)
        try:
            channel.deliver(hostile_alert())
        finally:
            channel.close()
        payload = slack.requests[0].json
    texts = mrkdwn_texts(payload)
    assert len(texts) > 2
    for text in texts:
        assert_inert(text)
    assert "&lt;!here&gt;" in payload["text"]
    assert "&lt;http://evil.example|details&gt;" in payload["text"]
    assert "&lt;!channel&gt; Baptist" in payload["text"]
    assert "&amp; &lt;@U123&gt;" in json.dumps(payload["blocks"])


def test_it_escapes_the_text_only_retry_after_invalid_blocks() -> None:
    with ScriptedServer([(400, "invalid_blocks"), (200, "ok")]) as slack:
        notifier = Notifier([SlackChannel(slack.url, timeout=2.0)], retry=FAST_RETRY)
        try:
            delivery = notifier.send(hostile_alert())
            assert delivery.wait(5)
            assert delivery.state == "delivered"
        finally:
            notifier.close(1.0)
        retry = slack.requests[1].json
    assert set(retry) == {"text"}
    assert_inert(retry["text"])
    assert "&lt;!here&gt;" in retry["text"]
