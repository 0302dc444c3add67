"""Times as people read them in a narrow table: ``5m ago``, ``in 42s``, ``3m late``."""

from __future__ import annotations

import datetime


def ago(value: str | None) -> str:
    """How long ago an RFC 3339 time was: ``42s ago``, ``5m ago``, ``3h ago``, ``2d ago`` (or ``never``)."""
    seconds = _seconds_from_now(value)
    return "never" if seconds is None else f"{_span(-seconds)} ago"


def until(value: str | None) -> str:
    """How soon an RFC 3339 time comes: ``in 5m``; ``5m late`` once it has passed (``-`` for none)."""
    seconds = _seconds_from_now(value)
    if seconds is None:
        return "-"
    return f"in {_span(seconds)}" if seconds >= 0 else f"{_span(-seconds)} late"


def _seconds_from_now(value: str | None) -> float | None:
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return (moment - datetime.datetime.now(datetime.UTC)).total_seconds()


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(0, int(seconds))}s"
