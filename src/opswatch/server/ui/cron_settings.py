"""A cron monitor's settings as people read and edit them on its page.

``shown(settings)`` turns the monitor service's canonical settings (``checkin_margin_seconds: 15.0``)
into labelled values with units (``Check-in margin: 15 s``). ``form_values`` fills the edit form with
the same settings as text the form gives back (``15s``, ``30m``), and ``changes(form, settings)`` reads
the submitted form into the settings that differ, in the shape ``MonitorService.update`` takes; a bad
field raises ``MonitorConfigError`` naming it, so the page can say which one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from ..monitors.errors import MonitorConfigError

#: The editable settings: form field, canonical key, label, and what the field takes.
FIELDS: Final = (
    ("schedule", "schedule", "Schedule", "crontab, @daily or every 10 minutes"),
    ("timezone", "timezone", "Time zone", "IANA name, e.g. Europe/Berlin"),
    ("checkin_margin", "checkin_margin_seconds", "Check-in margin", "e.g. 90s, 5m, 1h"),
    ("max_runtime", "max_runtime_seconds", "Max runtime", "e.g. 30m, 2h"),
    ("failure_threshold", "failure_threshold", "Failure threshold", "failed runs before it alerts"),
    ("recovery_threshold", "recovery_threshold", "Recovery threshold", "good runs before it recovers"),
)
#: Labels of the settings that are shown but not edited here.
_OTHER_LABELS: Final = {"early_margin_seconds": "Early margin"}
_DURATIONS: Final = frozenset({"checkin_margin_seconds", "early_margin_seconds", "max_runtime_seconds"})
_THRESHOLDS: Final = frozenset({"failure_threshold", "recovery_threshold"})
_LABELS: Final = {key: label for _, key, label, _ in FIELDS} | _OTHER_LABELS


def duration(seconds: float) -> str:
    """A length of time exactly, in the units people use: ``15 s``, ``1 min 30 s``, ``2 h``, ``1 d 6 h``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    whole = int(seconds)
    if whole != seconds or whole == 0:
        return f"{seconds:g} s"
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if whole >= size:
            parts.append(f"{whole // size} {unit}")
            whole %= size
    return " ".join(parts)


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def shown(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each setting as ``(label, value with its unit)``, in the service's order."""
    out: list[tuple[str, str]] = []
    for key, value in settings.items():
        label = _LABELS.get(key, key.replace("_", " ").capitalize())
        if key in _DURATIONS and isinstance(value, (int, float)):
            text = duration(float(value))
        elif key in _THRESHOLDS and isinstance(value, int):
            text = _runs(value)
        else:
            text = "—" if value is None else str(value)
        out.append((label, text))
    return out


def _field_text(seconds: float) -> str:
    """A duration as the form takes it back: ``15s``, ``30m``, ``2h``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def form_values(settings: Mapping[str, Any]) -> dict[str, str]:
    """The edit form's fields, filled with the current settings."""
    values: dict[str, str] = {}
    for field, key, _, _ in FIELDS:
        value = settings.get(key)
        if value is None:
            values[field] = ""
        elif key in _DURATIONS and isinstance(value, (int, float)):
            values[field] = _field_text(float(value))
        else:
            values[field] = str(value)
    return values


def changes(form: Mapping[str, str], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the submitted ``form`` changes (empty fields and unchanged values left out).

    Durations keep their unit as text for the service to read (a bare number is seconds); thresholds
    must be whole numbers. Raises ``MonitorConfigError`` naming the form field that is wrong.
    """
    current = form_values(settings)
    sent: dict[str, Any] = {}
    for field, key, _, _ in FIELDS:
        text = (form.get(field) or "").strip()
        if not text or text == current[field]:
            continue
        if key in _THRESHOLDS:
            if not (text.isascii() and text.isdigit()):
                raise MonitorConfigError(field, f"expected a whole number of runs, got {text!r}")
            sent[key] = int(text)
        elif key in _DURATIONS:
            sent[key] = f"{text}s" if text.replace(".", "", 1).isdigit() else text
        else:
            sent[key] = text
    return sent


def problem(error: MonitorConfigError) -> str:
    """The error as the page says it, by the field's label: ``Check-in margin: expected ...``."""
    by_name = {name: label for field, key, label, _ in FIELDS for name in (field, key)}
    label = by_name.get(error.key) or _LABELS.get(error.key) or error.key
    return f"{label}: {error.problem}"
