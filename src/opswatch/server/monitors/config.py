"""Monitor configuration: what a check-in or the API may send, checked and normalized.

The wire shapes (ours and Sentry's ``monitor_config``) are read by the shared
``opswatch.crons.config.parse_monitor_config``, the same reader the client's own validation uses:

- ``schedule``: a 5-field crontab, ``@hourly`` … ``@yearly``, ``every 30 seconds``, or Sentry's
  ``{"type": "crontab", "value": ...}`` / ``{"type": "interval", "value": 10, "unit": "minute"}``;
- ``timezone``: an IANA zone name (default UTC);
- ``checkin_margin``, ``max_runtime``: minutes, fractions allowed (Sentry's unit);
- ``failure_threshold`` (Sentry: ``failure_issue_threshold``), ``recovery_threshold``: 1..720.

On top of those, for people and the server's own API: ``early_margin`` (minutes; how early a check-in
still counts for the coming run), durations as text with a unit (``90s``, ``5m``, ``2h``), and
``checkin_margin_seconds``, ``early_margin_seconds``, ``max_runtime_seconds`` in seconds.

``normalize`` returns only the keys that were sent, in canonical form (the ``KEYS``, durations in
seconds), so an upsert merges them into what is stored; ``rules_for`` applies the defaults. Every
problem raises ``MonitorConfigError`` naming the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

from ...config import ConfigError
from ...crons.config import parse_monitor_config
from .. import limits
from .engine import Rules
from .errors import MonitorConfigError
from .slots import build_slots

#: Defaults, and the bounds every value is checked against (Sentry's where it has one).
DEFAULT_CHECKIN_MARGIN: Final = 60.0  # crontabs; an interval's default is min(this, the interval)
DEFAULT_MAX_RUNTIME: Final = 30 * 60.0
DEFAULT_THRESHOLD: Final = 1
MIN_DURATION: Final = 1.0
MAX_DURATION: Final = 28 * 24 * 3600.0  # 40,320 minutes, Sentry's largest margin and runtime

#: Canonical keys, in display order.
KEYS: Final = (
    "schedule",
    "timezone",
    "checkin_margin_seconds",
    "early_margin_seconds",
    "max_runtime_seconds",
    "failure_threshold",
    "recovery_threshold",
)

#: Keys the shared wire reader understands.
_WIRE_KEYS: Final = frozenset(
    {
        "schedule",
        "schedule_type",
        "timezone",
        "checkin_margin",
        "max_runtime",
        "failure_threshold",
        "failure_issue_threshold",
        "recovery_threshold",
    }
)
_SECONDS_KEYS: Final = {
    "checkin_margin_seconds": "checkin_margin_seconds",
    "early_margin_seconds": "early_margin_seconds",
    "max_runtime_seconds": "max_runtime_seconds",
}
_MINUTES_KEYS: Final = {
    "checkin_margin": "checkin_margin_seconds",
    "early_margin": "early_margin_seconds",
    "max_runtime": "max_runtime_seconds",
}
_DURATION_TEXT: Final = re.compile(
    r"\s*([0-9]+(?:\.[0-9]+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)\s*"
)
_SLUG: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def check_slug(slug: Any) -> str:
    """The slug if usable (what pings accept: letters, digits, ``-``, ``_``, ``.``); else an error."""
    if not isinstance(slug, str) or len(slug) > limits.MAX_SLUG_LENGTH or not _SLUG.fullmatch(slug):
        raise MonitorConfigError(
            "slug", f"expected 1..{limits.MAX_SLUG_LENGTH} letters, digits, '-', '_' or '.', got {slug!r}"
        )
    return slug


def normalize(payload: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """The settings in ``payload``, checked and canonical; only the keys that were sent.

    ``strict`` (the API) refuses unknown keys, so a typo does not silently do nothing; check-ins are
    read leniently (a newer client may send keys this server does not know). ``None`` means not sent.
    """
    result: dict[str, Any] = {}
    wire: dict[str, Any] = {}
    for key, value in payload.items():
        if value is None:
            continue
        if key in _SECONDS_KEYS:
            result[_SECONDS_KEYS[key]] = _duration(key, value, unit=1.0)
        elif key in _MINUTES_KEYS and (key == "early_margin" or isinstance(value, str)):
            result[_MINUTES_KEYS[key]] = _duration(key, value, unit=60.0)
        elif key in _WIRE_KEYS:
            wire[key] = value
        elif strict:
            raise MonitorConfigError(str(key), f"unknown monitor setting (known: {', '.join(KEYS)})")
    if wire:
        try:
            fields = parse_monitor_config(wire)
        except ConfigError as err:
            raise MonitorConfigError(err.setting, err.problem) from None
        if "schedule" in fields:
            result["schedule"] = fields["schedule"].text
        if "timezone" in wire:  # the reader fills in UTC for a schedule alone; that was not sent
            result["timezone"] = fields["timezone"]
        if "checkin_margin" in fields:
            result["checkin_margin_seconds"] = _bounded(
                "checkin_margin", fields["checkin_margin"].total_seconds()
            )
        if "max_runtime" in fields:
            result["max_runtime_seconds"] = _bounded("max_runtime", fields["max_runtime"].total_seconds())
        for key in ("failure_threshold", "recovery_threshold"):
            if key in fields:
                result[key] = fields[key]  # type: ignore[literal-required]
    if "schedule" in result or "timezone" in result:
        build_slots(result.get("schedule", "@daily"), result.get("timezone", "UTC"))
    return result


def merge(stored: Mapping[str, Any], sent: Mapping[str, Any]) -> dict[str, Any]:
    """``stored`` updated with ``sent`` (both canonical); checks that the result has a schedule."""
    merged = {**stored, **sent}
    if "schedule" not in merged:
        raise MonitorConfigError("schedule", "a monitor needs a schedule")
    build_slots(merged["schedule"], merged.get("timezone", "UTC"))
    return merged


def effective(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting with defaults filled in, for display."""
    rules = rules_for(config)
    return {
        "schedule": config["schedule"],
        "timezone": config.get("timezone", "UTC"),
        "checkin_margin_seconds": rules.checkin_margin,
        "early_margin_seconds": rules.early_margin,
        "max_runtime_seconds": rules.max_runtime,
        "failure_threshold": rules.failure_threshold,
        "recovery_threshold": rules.recovery_threshold,
    }


def rules_for(config: Mapping[str, Any]) -> Rules:
    """The engine's rules for a canonical config, defaults applied."""
    slots = build_slots(config["schedule"], config.get("timezone", "UTC"))
    margin = config.get("checkin_margin_seconds")
    if margin is None:
        margin = DEFAULT_CHECKIN_MARGIN
        if slots.period is not None:
            margin = max(MIN_DURATION, min(margin, slots.period))
    early = config.get("early_margin_seconds", margin)
    return Rules(
        slots=slots,
        checkin_margin=float(margin),
        early_margin=float(early),
        max_runtime=float(config.get("max_runtime_seconds", DEFAULT_MAX_RUNTIME)),
        failure_threshold=int(config.get("failure_threshold", DEFAULT_THRESHOLD)),
        recovery_threshold=int(config.get("recovery_threshold", DEFAULT_THRESHOLD)),
    )


def _duration(key: str, value: Any, *, unit: float) -> float:
    """A number in ``unit`` seconds, or a text with its own unit, as seconds within the bounds."""
    if isinstance(value, bool):
        raise MonitorConfigError(key, f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value) * unit
    elif isinstance(value, str) and (match := _DURATION_TEXT.fullmatch(value.lower())):
        number, word = float(match.group(1)), match.group(2)
        seconds = number * (3600.0 if word.startswith("h") else 60.0 if word.startswith("m") else 1.0)
    else:
        raise MonitorConfigError(key, f"expected a number or a text like '90s' or '5m', got {value!r}")
    return _bounded(key, seconds)


def _bounded(key: str, seconds: float) -> float:
    low = 0.0 if key.startswith("early_margin") else MIN_DURATION
    if not math.isfinite(seconds) or not low <= seconds <= MAX_DURATION:
        raise MonitorConfigError(
            key, f"expected {low:g} seconds to {MAX_DURATION / 86400:g} days, got {seconds:g} seconds"
        )
    return seconds
