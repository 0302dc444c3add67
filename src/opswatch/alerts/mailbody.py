"""Render an ``Alert`` as an email: a short subject, a plain-text body and a simple HTML body.

Both bodies come from the same alert the Slack blocks are built from (title and severity, summary, facts
such as rule, labels, value against threshold and start, the error, context, the link), so an email says
what the Slack message says. Nothing here does I/O.

Header safety: event text reaches only the subject, and ``subject`` folds every line break and control
character into a space, so no event can add a header. HTML is escaped; only http(s) links become links.
"""

from __future__ import annotations

import html

from .limits import EMAIL_MAX_SUBJECT
from .message import Alert, cut


def one_line(text: str) -> str:
    """``text`` with every line break and control character turned into a space, runs of spaces joined."""
    cleaned = "".join(
        " " if ord(ch) < 32 or ord(ch) == 127 or ch in "\u2028\u2029\x85" else ch for ch in text
    )
    return " ".join(cleaned.split())


def subject(alert: Alert, limit: int = EMAIL_MAX_SUBJECT) -> str:
    """``[opswatch] 🔥 Payment Failure: <first line of the summary> (<service · environment>)``, one line,
    at most ``limit`` characters (the summary is cut first, with a visible marker)."""
    head = one_line(f"[opswatch] {alert.heading}")
    where = one_line(alert.context[0]) if alert.context else ""
    tail = f" ({where})" if where else ""
    first = one_line(alert.summary.splitlines()[0]) if alert.summary.strip() else ""
    if first:
        room = limit - len(head) - len(tail) - 2
        if room >= 12:
            return f"{head}: {cut(first, room)}{tail}"
    return cut(head + tail, limit)


def plain_text(alert: Alert) -> str:
    """The plain-text body: the alert's text form, then its context lines."""
    lines = [alert.text]
    if alert.context:
        lines += ["", *(f"-- {item}" for item in alert.context)]
    lines += ["", "Sent by opswatch."]
    return "\n".join(lines) + "\n"


def _link(url: str, label: str) -> str:
    if url.startswith(("http://", "https://")):
        return f'<p><a href="{html.escape(url, quote=True)}">{html.escape(label)}</a></p>'
    return f"<p>{html.escape(label)}: {html.escape(url)}</p>"


def html_body(alert: Alert) -> str:
    """A simple HTML body (inline styles only, no images or scripts) with every text escaped."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html><body style="font-family:sans-serif;font-size:14px">',
        f"<h2>{esc(alert.heading)}</h2>",
    ]
    if alert.summary:
        parts.append("<p>" + "<br>".join(esc(line) for line in alert.summary.splitlines()) + "</p>")
    if alert.facts:
        rows = "".join(
            f'<tr><th style="text-align:left;padding-right:12px">{esc(label)}</th><td>{esc(value)}</td></tr>'
            for label, value in alert.facts
        )
        parts.append(f"<table>{rows}</table>")
    if alert.error and not any(label == "Error" for label, _ in alert.facts):
        parts.append(f"<p><b>Error</b></p><pre>{esc(alert.error)}</pre>")
    if alert.url:
        parts.append(_link(alert.url, alert.url_label))
    note = alert.repeat_note
    context = ([note] if note else []) + list(alert.context)
    if context:
        parts.append(f'<p style="color:#666">{esc(" · ".join(context))}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
