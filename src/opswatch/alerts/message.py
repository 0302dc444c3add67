"""The alert: one message, independent of the channel that will carry it.

An ``Alert`` is what templates build and channels render: a title with a severity, a one-line summary,
facts as label/value pairs, the error, and a link. It is immutable; the delivery worker derives copies
(``with_repeats``) to say how many identical alerts were counted instead of sent, and ``fold`` turns a
burst of alerts into one summary alert. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from .limits import CUT_MARKER, SUMMARY_MAX_LINES

Severity = Literal["critical", "error", "warning", "info", "resolved"]

#: The seed marks critical alerts with 🔥; the others follow the same idea.
SEVERITY_MARKERS: dict[str, str] = {
    "critical": "🔥",
    "error": "🚨",
    "warning": "⚠️",
    "info": "ℹ️",
    "resolved": "✅",
}
_SEVERITY_ORDER = ("resolved", "info", "warning", "error", "critical")

_NUMBERS = re.compile(r"\d+")
_HEX_IDS = re.compile(r"\b[0-9a-f]{8,}\b", re.IGNORECASE)


def cut(text: str, limit: int, marker: str = CUT_MARKER) -> str:
    """Return ``text`` unchanged when it fits in ``limit`` characters, else its start plus ``marker``."""
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[:limit]
    return text[: limit - len(marker)] + marker


def normalize(text: str) -> str:
    """Text with ids and numbers replaced, so ``order 123 failed`` and ``order 456 failed`` group together."""
    return _NUMBERS.sub("N", _HEX_IDS.sub("ID", text))


def fingerprint(*parts: object) -> str:
    """A short stable hash of ``parts`` (normalized text), used to recognise repeats of the same alert."""
    joined = "\x1f".join(normalize("" if p is None else str(p)) for p in parts)
    return hashlib.sha1(joined.encode("utf-8", "replace"), usedforsecurity=False).hexdigest()[:16]


def format_since(epoch: float) -> str:
    """``12:00:01 UTC`` for today's times, ``2025-11-01 12:00:01 UTC`` otherwise."""
    moment = time.gmtime(epoch)
    if time.strftime("%Y-%m-%d", moment) == time.strftime("%Y-%m-%d", time.gmtime()):
        return time.strftime("%H:%M:%S UTC", moment)
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", moment)


@dataclasses.dataclass(frozen=True)
class Alert:
    """One alert message. Build it with a ``SlackNotifications`` template or directly.

    ``fingerprint`` identifies repeats of "the same" alert (default: a hash of template, title and
    error, with numbers and ids normalized). ``more``/``since`` say how many identical alerts were counted
    and not sent since the one announced at ``since`` (epoch seconds); ``folded`` says how many alerts a
    summary message stands for. ``occurrences`` is the number of events the message accounts for.
    """

    title: str
    summary: str = ""
    severity: Severity = "critical"
    facts: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    url: str | None = None
    url_label: str = "View"
    template: str = "alert"
    fingerprint: str = ""
    #: Short context items shown under the message: service, environment, logger, event id ...
    context: tuple[str, ...] = ()
    #: Free-form data for machine channels (the generic webhook sends it as ``data``).
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False)
    timestamp: float = dataclasses.field(default_factory=time.time)
    more: int = 0
    since: float | None = None
    folded: int = 0
    occurrences: int = 1

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_MARKERS:
            raise ValueError(
                f"unknown severity {self.severity!r} (expected one of {', '.join(SEVERITY_MARKERS)})"
            )
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.template, self.title, self.error))

    @property
    def marker(self) -> str:
        """The severity marker put in front of the title (🔥 for critical, as in the seed)."""
        return SEVERITY_MARKERS[self.severity]

    @property
    def heading(self) -> str:
        """Marker and title: ``🔥 Payment Failure``."""
        return f"{self.marker} {self.title}"

    @property
    def repeat_note(self) -> str | None:
        """``199 more since 12:00:01 UTC`` when identical alerts were counted instead of sent."""
        if self.more <= 0 or self.since is None:
            return None
        return f"{self.more} more since {format_since(self.since)}"

    @property
    def text(self) -> str:
        """The plain-text form: Slack's notification fallback, and the whole message when blocks fail."""
        lines = [self.heading]
        if self.summary:
            lines += ["", self.summary]
        if self.facts:
            lines.append("")
            lines += [f"{label}: {value}" for label, value in self.facts]
        if self.error and not any(label == "Error" for label, _ in self.facts):
            lines.append(f"Error: {self.error}")
        if self.url:
            lines += ["", f"{self.url_label}: {self.url}"]
        note = self.repeat_note
        if note:
            lines += ["", f"({note})"]
        return "\n".join(lines)

    def with_repeats(self, more: int, since: float | None) -> Alert:
        """A copy saying that ``more`` identical alerts were counted since the announcement at ``since``."""
        return dataclasses.replace(self, more=more, since=since, occurrences=self.occurrences + more)

    def map_text(self, fn: Callable[[str], str]) -> Alert:
        """A copy with ``fn`` applied to every piece of text (used to redact what callers passed in)."""
        return dataclasses.replace(
            self,
            title=fn(self.title),
            summary=fn(self.summary),
            facts=tuple((fn(label), fn(value)) for label, value in self.facts),
            error=None if self.error is None else fn(self.error),
            url=None if self.url is None else fn(self.url),
            context=tuple(fn(item) for item in self.context),
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form, what the generic webhook sends."""
        return {
            "title": self.title,
            "severity": self.severity,
            "summary": self.summary,
            "facts": [{"label": label, "value": value} for label, value in self.facts],
            "error": self.error,
            "url": self.url,
            "template": self.template,
            "fingerprint": self.fingerprint,
            "context": list(self.context),
            "data": dict(self.data),
            "timestamp": self.timestamp,
            "more": self.more,
            "since": self.since,
            "folded": self.folded,
            "occurrences": self.occurrences,
            "text": self.text,
        }


def facts(pairs: Iterable[tuple[str, object]]) -> tuple[tuple[str, str], ...]:
    """Label/value pairs as text, leaving out values that are ``None`` or empty."""
    return tuple((label, str(value)) for label, value in pairs if value is not None and value != "")


def fold(alerts: Sequence[Alert], now: float | None = None) -> Alert:
    """One summary alert standing for ``alerts`` (a burst beyond the pace, or what piled up behind a wait).

    The summary counts every alert by title, keeps the highest severity, lists the first errors, and
    carries the total number of occurrences, so nothing that was folded goes uncounted.
    """
    if len(alerts) == 1:
        return alerts[0]
    count = sum(max(1, a.folded) for a in alerts)
    occurrences = sum(a.occurrences for a in alerts)
    severity = max((a.severity for a in alerts), key=_SEVERITY_ORDER.index)
    by_title: Counter[str] = Counter()
    for alert in alerts:
        by_title[alert.heading] += max(1, alert.folded)
    lines = [f"• {n}× {title}" for title, n in by_title.most_common(SUMMARY_MAX_LINES)]
    if len(by_title) > SUMMARY_MAX_LINES:
        rest = sum(n for _, n in by_title.most_common()[SUMMARY_MAX_LINES:])
        lines.append(f"• {rest} more in {len(by_title) - SUMMARY_MAX_LINES} other kinds")
    first = min(a.timestamp for a in alerts)
    last = max(a.timestamp for a in alerts)
    errors: list[str] = []
    for alert in alerts:
        if alert.error and alert.error not in errors:
            errors.append(alert.error)
        if len(errors) >= 3:
            break
    urls = [a.url for a in alerts if a.url]
    return Alert(
        title=f"{count} alerts",
        summary="\n".join(lines),
        severity=severity,
        facts=facts(
            [
                ("Occurrences", occurrences),
                ("First", format_since(first)),
                ("Last", format_since(last)),
            ]
        ),
        error="\n".join(errors) or None,
        url=urls[0] if urls else None,
        url_label=next((a.url_label for a in alerts if a.url), "View"),
        template="summary",
        fingerprint=fingerprint("summary", *sorted(by_title)),
        context=alerts[0].context,
        data={"titles": dict(by_title)},
        timestamp=now if now is not None else last,
        folded=count,
        occurrences=occurrences,
    )
