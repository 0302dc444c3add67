"""A rule's signal over time as an SVG line chart: a line per instance, its thresholds, its firing periods.

The values come from the rule itself: ``signal_series`` evaluates the rule through the same signal code
the evaluation round uses (``rules.evaluate``) at evenly spaced times (``points_for``) over the chart
window, without writing any state. The values are not stored between rounds (only transitions are),
so recomputing them is the honest source; it costs ``MIN_POINTS`` to ``MAX_POINTS`` window queries
per page view.
Firing periods come from the notification log (a ``resolved`` row carries when its firing started) and
from the instances that fire now. ``line_chart`` only does geometry; the template draws it.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from .. import limits
from ..rules.evaluate import evaluate
from ..rules.model import Rule
from ..rules.signals import SignalSource

#: Evaluations behind a chart: at least ``MIN_POINTS``, one per window when the span holds more (so
#: consecutive windows cover the span without holes), at most ``MAX_POINTS``.
MIN_POINTS: Final = 30
MAX_POINTS: Final = 120
#: The lines a chart draws at most (the instances with the highest values).
MAX_LINES: Final = 5
#: The chart spans twelve windows, at least an hour and at most a week.
MIN_SPAN: Final = 3600.0
MAX_SPAN: Final = 7 * 86400.0


@dataclasses.dataclass(frozen=True)
class Series:
    """One instance's values (None where the rule had no value or was not expected)."""

    name: str
    values: tuple[float | None, ...]


@dataclasses.dataclass(frozen=True)
class SignalSeries:
    """The times evaluated (epoch seconds, oldest first), a series per instance, and the errors met."""

    times: tuple[float, ...]
    series: tuple[Series, ...]
    errors: tuple[str, ...] = ()


def span_for(rule: Rule) -> float:
    """How far back a rule's chart reaches: twelve windows, clamped to an hour .. a week."""
    return min(MAX_SPAN, max(MIN_SPAN, 12 * rule.window))


def points_for(rule: Rule) -> int:
    """How many evaluations a rule's chart takes (see ``MIN_POINTS``)."""
    return min(MAX_POINTS, max(MIN_POINTS, math.ceil(span_for(rule) / max(rule.window, 1.0))))


def signal_series(
    rule: Rule,
    source: SignalSource,
    now: float,
    ingest_delay: float,
    *,
    budget: float = limits.RULES_CHART_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> SignalSeries:
    """Evaluate ``rule`` at ``points_for(rule)`` times ending at ``now``, newest first, for at most
    ``budget`` seconds of ``clock`` (the older points past it stay empty, with a note in ``errors``);
    never raises (errors are collected)."""
    span, points = span_for(rule), points_for(rule)
    times = tuple(now - span + span * (i + 1) / points for i in range(points))
    by_name: dict[str, list[float | None]] = {}
    errors: list[str] = []
    started = clock()
    for index in reversed(range(points)):
        if clock() - started >= budget:
            errors.append(f"the chart stopped after {budget:g} s; its {index + 1} oldest points are left out")
            break
        at = times[index]
        evaluation = evaluate(rule, source, at, ingest_delay)
        if evaluation.error is not None:
            if evaluation.error not in errors:
                errors.append(evaluation.error)
            continue
        for observation in evaluation.observations:
            name = ", ".join(f"{k}={v}" for k, v in sorted(observation.group.items())) or rule.name
            values = by_name.setdefault(name, [None] * points)
            value = observation.value
            values[index] = value if value is not None and math.isfinite(value) else None
    ranked = sorted(by_name.items(), key=lambda item: -max((v for v in item[1] if v is not None), default=0))
    series = tuple(Series(name, tuple(values)) for name, values in ranked[:MAX_LINES])
    return SignalSeries(times, series, tuple(errors))


@dataclasses.dataclass(frozen=True)
class Line:
    """A polyline (``points`` in SVG syntax, one run per stretch without gaps) and its name."""

    name: str
    runs: tuple[str, ...]
    dots: tuple[tuple[float, float, str], ...]


@dataclasses.dataclass(frozen=True)
class ThresholdLine:
    """A horizontal threshold line."""

    y: float
    label: str
    css: str


@dataclasses.dataclass(frozen=True)
class Shade:
    """A firing period: ``x`` and ``width`` in chart units, with its tooltip."""

    x: float
    width: float
    title: str


@dataclasses.dataclass(frozen=True)
class LineChart:
    """Everything the ``signal`` template macro draws, scaled to ``width`` x ``height``."""

    width: int
    height: int
    lines: tuple[Line, ...]
    thresholds: tuple[ThresholdLine, ...]
    shades: tuple[Shade, ...]
    top: float
    labels: tuple[str, ...]
    empty: bool


def line_chart(
    data: SignalSeries,
    thresholds: Mapping[str, float | None],
    firing: Sequence[tuple[float, float]],
    *,
    width: int = 600,
    height: int = 160,
) -> LineChart:
    """Scale ``data`` with its ``thresholds`` (``{"critical": 0.05, ...}``) and ``firing`` periods
    (``(start, end)`` epochs, clipped to the chart) to the box. The y axis starts at 0 and reaches
    past the highest value and threshold, so a threshold is always on the chart."""
    values = [v for s in data.series for v in s.values if v is not None]
    levels = {name: value for name, value in thresholds.items() if value is not None}
    top = max([*values, *levels.values(), 0.0]) * 1.15 or 1.0
    start, end = (data.times[0], data.times[-1]) if data.times else (0.0, 1.0)
    length = max(end - start, 1e-9)

    def x(at: float) -> float:
        return round((at - start) / length * width, 2)

    def y(value: float) -> float:
        return round(height - max(value, 0.0) / top * height, 2)

    lines = []
    for series in data.series:
        runs: list[list[str]] = [[]]
        dots = []
        for at, value in zip(data.times, series.values, strict=True):
            if value is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(at)},{y(value)}")
            dots.append((x(at), y(value), f"{_clock(at)}: {value:g}"))
        lines.append(Line(series.name, tuple(" ".join(r) for r in runs if r), tuple(dots)))
    rules = tuple(ThresholdLine(y(value), f"{name} {value:g}", name) for name, value in levels.items())
    shades = []
    for begin, finish in firing:
        left, right = max(begin, start), min(finish, end)
        if right > left:
            title = f"firing {_clock(begin)} – {_clock(finish)}"
            shades.append(Shade(x(left), round(x(right) - x(left), 2), title))
    labels = tuple(_clock(data.times[i]) for i in (0, len(data.times) // 2, -1)) if data.times else ()
    return LineChart(width, height, tuple(lines), rules, tuple(shades), top, labels, not values)


def _clock(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%m-%d %H:%M")
