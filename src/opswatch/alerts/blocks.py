"""Render an ``Alert`` as a Slack incoming-webhook payload: Block Kit blocks plus a plain-text fallback.

The layout follows the seed's example: a header with the severity marker and title, the summary, the
facts as fields, the error in a code block, a context line (repeat note, service, event id), and a
"View" button when a URL is known. Every Slack limit (``limits.SLACK_*``) is enforced here by cutting
with a visible marker, so a long value never turns into Slack's ``invalid_blocks``.
"""

from __future__ import annotations

from typing import Any

from .limits import (
    CUT_MARKER,
    SLACK_MAX_BLOCKS,
    SLACK_MAX_BUTTON_TEXT,
    SLACK_MAX_BUTTON_URL,
    SLACK_MAX_CONTEXT_ELEMENTS,
    SLACK_MAX_FIELD_TEXT,
    SLACK_MAX_FIELDS,
    SLACK_MAX_HEADER_TEXT,
    SLACK_MAX_SECTION_TEXT,
    SLACK_MAX_TEXT,
)
from .message import Alert, cut

Block = dict[str, Any]


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut_mrkdwn(text: str, limit: int) -> str:
    """Escape ``text`` and cut it to ``limit`` characters without splitting an ``&amp;`` entity."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    head = escaped[: limit - len(CUT_MARKER)]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + CUT_MARKER


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _code(text: str, limit: int) -> str:
    """A mrkdwn code block of at most ``limit`` characters, fences included."""
    body = cut_mrkdwn(text.replace("```", "'''"), limit - 8)
    return f"```\n{body}\n```"


def slack_payload(alert: Alert, *, text_only: bool = False) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook. ``text_only`` leaves the blocks out (the fallback
    used once when Slack answers ``invalid_blocks``).

    Every text Slack reads as mrkdwn is escaped, the top-level ``text`` too (notifications show it, and
    it is the whole message in the text-only retry): event text such as ``<!here>`` or
    ``<http://evil.example|details>`` reaches Slack as the characters it is, never as a mention or a
    link. Plain-text elements (the header, the button) are shown literally by Slack and need nothing."""
    text = cut_mrkdwn(alert.text, SLACK_MAX_TEXT)
    if text_only:
        return {"text": text}
    header = {"type": "plain_text", "text": cut(alert.heading, SLACK_MAX_HEADER_TEXT), "emoji": True}
    head: list[Block] = [{"type": "header", "text": header}]
    if alert.summary:
        head.append(_section(cut_mrkdwn(alert.summary, SLACK_MAX_SECTION_TEXT)))
    tail: list[Block] = []
    has_error_fact = any(label == "Error" for label, _ in alert.facts)
    if alert.error and not has_error_fact:
        tail.append(_section("*Error*\n" + _code(alert.error, SLACK_MAX_SECTION_TEXT - 8)))
    context = _context(alert)
    if context:
        tail.append(context)
    if alert.url and len(alert.url) <= SLACK_MAX_BUTTON_URL:
        tail.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": cut(alert.url_label, SLACK_MAX_BUTTON_TEXT)},
                        "url": alert.url,
                    }
                ],
            }
        )
    budget = SLACK_MAX_BLOCKS - len(head) - len(tail)
    fact_blocks = _fact_sections(alert.facts, budget)
    return {"text": text, "blocks": head + fact_blocks + tail}


def _fact_sections(facts: tuple[tuple[str, str], ...], budget: int) -> list[Block]:
    """Facts as section fields, ten per section, within ``budget`` blocks (the last one says what is left)."""
    # label and value share one field: 200 characters for the label, the rest for the value
    fields = [
        {
            "type": "mrkdwn",
            "text": f"*{cut_mrkdwn(label, 200)}:*\n{cut_mrkdwn(value, SLACK_MAX_FIELD_TEXT - 205)}",
        }
        for label, value in facts
    ]
    sections: list[Block] = []
    for start in range(0, len(fields), SLACK_MAX_FIELDS):
        if len(sections) == budget - 1 and start + SLACK_MAX_FIELDS < len(fields):
            left = len(fields) - start
            sections.append(_section(f"_{left} more facts not shown_"))
            break
        sections.append({"type": "section", "fields": fields[start : start + SLACK_MAX_FIELDS]})
    return sections


def _context(alert: Alert) -> Block | None:
    items: list[str] = []
    note = alert.repeat_note
    if note:
        items.append(f"*{escape(note)}*")
    items += [cut_mrkdwn(item, SLACK_MAX_FIELD_TEXT) for item in alert.context]
    if not items:
        return None
    if len(items) > SLACK_MAX_CONTEXT_ELEMENTS:
        hidden = len(items) - SLACK_MAX_CONTEXT_ELEMENTS + 1
        items = [*items[: SLACK_MAX_CONTEXT_ELEMENTS - 1], f"{hidden} more"]
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": item} for item in items]}
