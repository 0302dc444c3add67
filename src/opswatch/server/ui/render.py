"""Rendering pages: the Jinja2 environment, the filters templates use, and SVG bar charts.

Autoescape is on for every template, so anything an event carries (messages, field values, stack
frames, SQL results) is shown as text, never as markup. Each answer carries headers that keep the page
to itself: a Content-Security-Policy allowing only this server's own CSS and JS (no inline scripts or
styles), no framing, no caching, and a referrer only for the server itself (``same-origin``: links to
other sites carry none, and the browser names the page's origin on its own forms, which the CSRF
check needs; ``no-referrer`` made Chromium send ``Origin: null`` and every form was refused).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import jinja2
import orjson
from starlette.responses import HTMLResponse, Response

from ..._version import __version__
from ...record import format_timestamp
from . import TEMPLATES_DIR

#: Headers on every dashboard answer.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def secure(response: Response) -> Response:
    """Add the dashboard's security headers to ``response`` and return it."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


# -- values as text ----------------------------------------------------------------------------------


def to_epoch(value: Any) -> float | None:
    """Seconds since the epoch from an RFC 3339 string, a datetime or a number; None when unknown."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    if isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return to_epoch(moment)
    return None


def when(value: Any) -> str:
    """``2025-11-01 02:00:03 UTC``, or an em dash when there is no time."""
    epoch = to_epoch(value)
    if epoch is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def iso(value: Any) -> str:
    """A time as RFC 3339 UTC (for ``<time datetime=...>``); empty when there is no time."""
    epoch = to_epoch(value)
    return "" if epoch is None else format_timestamp(epoch)


def ago(value: Any, now: float) -> str:
    """How long before (``3 min ago``) or after (``in 8 s``) ``now`` a time is."""
    epoch = to_epoch(value)
    if epoch is None:
        return "never"
    delta = now - epoch
    text = span(abs(delta))
    if abs(delta) < 1:
        return "just now"
    return f"{text} ago" if delta > 0 else f"in {text}"


def span(seconds: float) -> str:
    """A length of time in its largest sensible unit: ``12 s``, ``4 min``, ``3 h``, ``2 d``."""
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def millis(value: Any) -> str:
    """A duration in milliseconds as ``42 ms`` or ``1.4 s``; an em dash when unknown."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    if value < 1:
        return f"{value:.2f} ms"
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s"


def percent(value: Any) -> str:
    """A ratio (0..1) as ``95.2%``; an em dash when unknown."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    return f"{value * 100:.1f}%".replace(".0%", "%")


def number(value: Any) -> str:
    """A count with thousands separators."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—" if value is None else str(value)
    return f"{value:,}"


def tick(value: float) -> str:
    """An axis value: whole numbers with separators; a fraction only below 10 (``2.5``), where it
    says something (``153.5`` events does not)."""
    if float(value).is_integer() or value >= 10:
        return f"{round(value):,}"
    return f"{value:.1f}"


def pretty_json(value: Any) -> str:
    """A value as indented JSON text (escaped by the template like any other text)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return repr(value)


def cell(value: Any) -> str:
    """A SQL result value as table text (None as an empty cell, containers as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            return repr(value)
    return str(value)


# -- charts ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Bar:
    """One bar: where it is drawn, its alert (error) part, and its tooltip."""

    x: float
    y: float
    width: float
    height: float
    alert_y: float
    alert_height: float
    title: str


@dataclasses.dataclass(frozen=True)
class Chart:
    """Bars scaled to a ``width`` x ``height`` box, ready for the ``bars`` macro."""

    width: int
    height: int
    label: str
    bars: tuple[Bar, ...]
    peak: int


def chart(
    values: Sequence[int],
    *,
    alerts: Sequence[int] | None = None,
    titles: Sequence[str] | None = None,
    width: int = 600,
    height: int = 120,
    label: str = "",
    gap: float = 0.15,
) -> Chart:
    """Scale ``values`` (and the ``alerts`` part of each, drawn over it) to bars in the box.

    A bar with any count is at least one unit tall, so a lone event still shows.
    """
    count = len(values)
    peak = max([*values, *(alerts or []), 0])
    if count == 0:
        return Chart(width, height, label, (), 0)
    slot = width / count
    bars: list[Bar] = []
    for index, value in enumerate(values):
        alert = alerts[index] if alerts is not None and index < len(alerts) else 0
        bar_height = _scaled(value, peak, height)
        alert_height = min(bar_height, _scaled(alert, peak, height))
        title = titles[index] if titles is not None and index < len(titles) else str(value)
        bars.append(
            Bar(
                x=round(index * slot + slot * gap / 2, 2),
                y=round(height - bar_height, 2),
                width=round(slot * (1 - gap), 2),
                height=round(bar_height, 2),
                alert_y=round(height - alert_height, 2),
                alert_height=round(alert_height, 2),
                title=title,
            )
        )
    return Chart(width, height, label, tuple(bars), peak)


def _scaled(value: int, peak: int, height: int) -> float:
    if value <= 0 or peak <= 0:
        return 0.0
    return max(1.0, value / peak * height)


# -- the environment ---------------------------------------------------------------------------------


@functools.cache
def environment() -> jinja2.Environment:
    """The dashboard's Jinja2 environment (autoescape on, undefined names are errors)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when, iso=iso, millis=millis, percent=percent, number=number, pretty_json=pretty_json, cell=cell,
        tick=tick,
    )

    @jinja2.pass_context
    def ago_filter(context: jinja2.runtime.Context, value: Any) -> str:
        return ago(value, float(context["now"]))

    env.filters["ago"] = ago_filter
    env.globals.update(version=__version__, chart=chart)
    return env


def render(name: str, values: Mapping[str, Any]) -> str:
    """The template ``name`` rendered with ``values`` (plus ``now``, epoch seconds, unless given)."""
    context = {"now": time.time(), **values}
    return environment().get_template(name).render(context)


def page(name: str, values: Mapping[str, Any], status: int = 200) -> Response:
    """An HTML answer: the template rendered, with the security headers."""
    return secure(HTMLResponse(render(name, values), status_code=status))
