"""What a rule's notifications say, built with the alert library's templates.

Every message names the rule, the instance's labels, the value against the threshold, when the incident
started and a link to the rule; a resolve says how long it lasted. A rule with
``template = "high_error_rate"`` uses the seed's template (error rate in percent, the threshold, the time
window); the others use the generic ``alert`` template. Several rows of one notification group become one
summary message with a line each.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ...alerts.message import Alert, Severity
from ...alerts.templates import SlackNotifications
from .durations import format_duration
from .model import Rule

#: Kinds that announce an incident as firing (a resolve is only sent when one of these was).
FIRING_KINDS: Final = ("firing", "updated", "repeat", "stable")
_TITLES: Final = {
    "firing": "Alert firing",
    "updated": "Alert escalated",
    "repeat": "Alert still firing",
    "resolved": "Alert resolved",
    "flapping": "Alert flapping",
    "stable": "Alert stable again",
    "error": "Alert rule failing",
}


@dataclasses.dataclass(frozen=True)
class Note:
    """One logged notification, as the renderer needs it (a ``rule_notifications`` row)."""

    id: int
    rule: str
    kind: str
    labels: Mapping[str, str]
    at: float
    severity: str | None = None
    value: float | None = None
    started_at: float | None = None
    reason: str | None = None


def stamp(epoch: float | None) -> str:
    """``2026-12-03 12:00:00 UTC``."""
    if epoch is None:
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def show_value(rule: Rule | None, value: float | None) -> str:
    """The value as people read it: a percentage for error ratios."""
    if value is None:
        return "no data"
    if rule is not None and rule.kind == "change":
        return f"{value:+.1f}%"
    if rule is not None and rule.kind == "anomaly":
        return f"{value:.1f} spreads off the usual"
    if rule is not None and rule.signal == "error_ratio":
        return f"{value * 100:.2f}%"
    return f"{value:.4g}"


def show_labels(labels: Mapping[str, str]) -> str:
    """``service=checkout, env=prod`` without the rule name (it is in the title)."""
    shown = [f"{k}={v}" for k, v in sorted(labels.items()) if k != "rule"]
    return ", ".join(shown) or "(all events)"


def threshold_text(rule: Rule | None, severity: str | None) -> str | None:
    if rule is None:
        return None
    threshold = rule.threshold_for("warning" if severity == "warning" else "critical")
    if threshold is None:
        return None
    if rule.kind == "change":
        return f"{threshold.op} {threshold.value:g}%"
    if rule.signal == "error_ratio":
        return f"{threshold.op} {threshold.value * 100:g}%"
    return str(threshold)


def _severity(note: Note) -> Severity:
    if note.kind == "resolved":
        return "resolved"
    if note.kind in ("flapping", "error") or note.severity == "warning":
        return "warning"
    if note.kind == "stable" and note.reason and "firing" not in note.reason:
        return "info"
    return "critical"


def _facts(note: Note, rule: Rule | None) -> dict[str, Any]:
    facts: dict[str, Any] = {"Rule": note.rule, "Labels": show_labels(note.labels)}
    if note.kind != "error":
        facts["Value"] = show_value(rule, note.value)
        facts["Threshold"] = threshold_text(rule, note.severity)
        facts["Severity"] = note.severity
    if note.started_at is not None:
        facts["Started"] = stamp(note.started_at)
    if note.kind == "resolved" and note.started_at is not None:
        facts["Lasted"] = format_duration(note.at - note.started_at)
    if note.reason:
        facts["Why"] = note.reason
    return facts


def one_line(note: Note, rule: Rule | None) -> str:
    """A summary line for a group message."""
    text = f"{_TITLES.get(note.kind, note.kind)}: {show_labels(note.labels)}"
    if note.kind != "error":
        text += f", value {show_value(rule, note.value)}"
    if note.kind == "resolved" and note.started_at is not None:
        text += f", lasted {format_duration(note.at - note.started_at)}"
    return text


def render(notes: Sequence[Note], rule: Rule | None, link: str | None) -> Alert:
    """The message for one group's notes (one note: its own message; several: a summary)."""
    fingerprint = "rule-notification:" + ",".join(str(n.id) for n in notes)
    if len(notes) > 1:
        worst = max(notes, key=lambda n: ("resolved", "info", "warning", "critical").index(_severity(n)))
        return SlackNotifications.alert(
            title=f"{notes[0].rule}: {len(notes)} alert changes",
            message="\n".join(one_line(note, rule) for note in notes),
            severity=_severity(worst),
            fields={"Rule": notes[0].rule},
            url=link,
            fingerprint=fingerprint,
        )
    note = notes[0]
    severity = _severity(note)
    facts = _facts(note, rule)
    if (
        rule is not None
        and rule.template == "high_error_rate"
        and note.kind in ("firing", "updated", "repeat")
    ):
        alert = SlackNotifications.high_error_rate(
            error_rate=round((note.value or 0.0) * 100, 2),
            time_window=format_duration(rule.window),
            url=link,
            fingerprint=fingerprint,
            **{k: v for k, v in facts.items() if k != "Value" and v is not None},
        )
        return dataclasses.replace(alert, severity=severity, title=f"High Error Rate: {note.rule}")
    return SlackNotifications.alert(
        title=f"{_TITLES.get(note.kind, note.kind)}: {note.rule}",
        message=_summary(note, rule),
        severity=severity,
        fields=facts,
        error=note.reason if note.kind == "error" else None,
        url=link,
        fingerprint=fingerprint,
    )


def _summary(note: Note, rule: Rule | None) -> str:
    labels = show_labels(note.labels)
    if note.kind == "error":
        return "The rule could not be evaluated; its alerts keep their state as its on_error policy says."
    if note.kind == "flapping":
        return f"{labels} fires and resolves too often; its messages are muted until it is stable."
    if note.kind == "resolved":
        return f"{labels} is back to normal ({show_value(rule, note.value)})."
    threshold = threshold_text(rule, note.severity)
    against = f" (threshold {threshold})" if threshold else ""
    return f"{labels}: {show_value(rule, note.value)}{against}."
