"""Change and anomaly rules: the rule's signal now, against the same signal in earlier windows.

Both read through the ``SignalSource`` protocol only (``source.observe(rule, start, end)`` on shifted
windows), so whatever answers a threshold rule (SQL over the store, or per-minute rollups) answers these
too, and a rollup source makes the earlier windows as cheap as the current one.

Shifts follow the rule's ``timezone`` calendar: "a week earlier" is the same wall-clock time seven days
before, across daylight saving changes (a Sunday 10:00 service stays Sunday 10:00).

**Change** (``compare = "1w"``): the value is the percent change from the window ``compare`` earlier to
now, ``(now - then) / |then| * 100``. A group missing from a window reads 0 for the volume signals
(``count``, ``rate``, ``distinct``) and no data for the others. A zero earlier reading has no percentage:
0 then and 0 now is 0 %, anything else after 0 is no data (the ``no_data`` policy applies), so a service
that did not exist a week ago does not fire "+inf %". ``min_events`` counts the events behind the
reading: for volume signals the larger window's (a drop to zero is what such a rule is for), for the
others the smaller one's (a ratio of two requests means nothing, now or then).

**Anomaly** (``anomaly = { weeks = 4, min_weeks = 3, direction = "below" }``): the baseline is the same
window in each of the last ``weeks`` weeks. A week counts as history when its window held any event of
the rule (any group); fewer than ``min_weeks`` such weeks read as no data, so a new server or rule
cannot fire. The value is a robust score: ``(now - median) / spread``, where the spread is 1.4826 * MAD
(the standard deviation for normal data, unmoved by one odd week), never narrower than 10 % of the
median. Volumes (``count``, ``rate``, ``distinct``) are scored on the square root of their event counts
(Anscombe's ``sqrt(n + 3/8)``), where Poisson noise has the same size (about 0.5) at every level, and
the spread is never narrower than that: 5 donations in an hour that usually has 1 is noise (score 2.3),
4 on a Sunday morning that usually has 45 is not (score -9.3). A Sunday peak is compared with earlier
Sunday peaks, not with the quiet hours before it.
"""

from __future__ import annotations

import datetime
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Final
from zoneinfo import ZoneInfo

from .model import VOLUME_SIGNALS, Observation, Rule, instance_key
from .signals import SignalSource, UnseenFields

#: 1.4826 * MAD estimates the standard deviation of normal data.
MAD_SCALE: Final = 1.4826
#: The spread is never narrower than this share of the median (signals other than volumes).
RELATIVE_FLOOR: Final = 0.10
#: The spread of volumes on the square-root scale is never narrower than Poisson noise there (0.5).
POISSON_FLOOR: Final = 0.5
_WEEK: Final = 7 * 86_400.0


def shifted(epoch: float, seconds: float, zone: str) -> float:
    """``epoch`` moved back by ``seconds``; whole days move on the wall clock of ``zone``."""
    if zone == "UTC" or seconds % 86_400:
        return epoch - seconds
    local = datetime.datetime.fromtimestamp(epoch, ZoneInfo(zone))
    return (local - datetime.timedelta(seconds=seconds)).timestamp()


def observe(rule: Rule, source: SignalSource, start: float, end: float) -> list[Observation]:
    """The rule's observations over ``[start, end)``: the source's, or a change's or an anomaly's."""
    if rule.compare is not None:
        return change(rule, source, start, end)
    if rule.anomaly is not None:
        return anomaly(rule, source, start, end)
    return source.observe(rule, start, end)


def _read(rule: Rule, source: SignalSource, start: float, end: float) -> dict[str, Observation]:
    try:
        found = source.observe(rule, start, end)
    except UnseenFields as err:  # a field never seen: no data, for the whole comparison
        raise UnseenFields(err.fields, []) from None
    return {instance_key(o.group): o for o in found}


def _volume(rule: Rule) -> bool:
    return rule.signal in VOLUME_SIGNALS


def _value(rule: Rule, reading: Observation | None) -> float | None:
    if reading is None:
        return 0.0 if _volume(rule) else None
    return reading.value


def _events(rule: Rule, counts: Sequence[int | None]) -> int | None:
    if any(count is None for count in counts):
        return None  # a SQL rule without an events column
    known = [count for count in counts if count is not None]
    return max(known) if _volume(rule) else min(known)


def _show(value: float | None) -> str:
    return "no data" if value is None else f"{value:.4g}"


def change(rule: Rule, source: SignalSource, start: float, end: float) -> list[Observation]:
    """Percent change from the window ``rule.compare`` earlier (see the module docstring)."""
    assert rule.compare is not None
    now = _read(rule, source, start, end)
    then = _read(
        rule, source, shifted(start, rule.compare, rule.timezone), shifted(end, rule.compare, rule.timezone)
    )
    earlier = _ago(rule.compare)
    found = []
    for key in dict.fromkeys([*now, *then]):
        current, before = now.get(key), then.get(key)
        group = (current or before or Observation({}, None)).group
        value, base = _value(rule, current), _value(rule, before)
        percent: float | None
        if value is None or base is None or (base == 0 and value != 0):
            percent = None
        else:
            percent = 0.0 if base == 0 else (value - base) / abs(base) * 100.0
        events = _events(
            rule,
            [current.events if current else 0, before.events if before else 0],
        )
        note = f"{_show(value)} now against {_show(base)} {earlier}"
        found.append(Observation(group, percent, events, note))
    return found


def _ago(seconds: float) -> str:
    for size, unit in ((_WEEK, "week"), (86_400.0, "day"), (3600.0, "hour"), (60.0, "minute")):
        if seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} earlier"
    return f"{seconds:g}s earlier"


def _scale(rule: Rule, value: float) -> float:
    """Volume signals on the square-root scale of their event counts (see the module docstring)."""
    if rule.signal not in VOLUME_SIGNALS:
        return value
    count = value * rule.window / 60.0 if rule.signal == "rate" else value
    return math.sqrt(max(count, 0.0) + 0.375)  # Anscombe's transform: steadier near zero


def spread(rule: Rule, values: Sequence[float], median: float) -> float:
    """The robust spread of baseline ``values`` (already on the rule's scale), with its floor."""
    mad = statistics.median(abs(value - median) for value in values)
    floor = POISSON_FLOOR if rule.signal in VOLUME_SIGNALS else max(RELATIVE_FLOOR * abs(median), 1e-9)
    return max(MAD_SCALE * mad, floor)


def anomaly(rule: Rule, source: SignalSource, start: float, end: float) -> list[Observation]:
    """The robust score of each group against the same window of earlier weeks."""
    assert rule.anomaly is not None
    settings = rule.anomaly
    now = _read(rule, source, start, end)
    weeks: list[Mapping[str, Observation]] = []
    for week in range(1, settings.weeks + 1):
        back = week * _WEEK
        found = _read(rule, source, shifted(start, back, rule.timezone), shifted(end, back, rule.timezone))
        if any(_had_data(o) for o in found.values()):
            weeks.append(found)
    results = []
    for key in dict.fromkeys([*now, *(key for week in weeks for key in week)]):
        current = now.get(key)
        group = (current or next(week[key] for week in weeks if key in week)).group
        value = _value(rule, current)
        history = [v for v in (_value(rule, week.get(key)) for week in weeks) if v is not None]
        if len(history) < settings.min_weeks:
            note = f"{len(history)} of {settings.weeks} weeks of history; {settings.min_weeks} needed"
            results.append(Observation(group, None, current.events if current else 0, note))
            continue
        scaled = [_scale(rule, v) for v in history]
        middle = statistics.median(scaled)
        score: float | None = None
        if value is not None:
            score = (_scale(rule, value) - middle) / spread(rule, scaled, middle)
            score = {"above": score, "below": -score, "both": abs(score)}[settings.direction]
        baseline_events = [week[key].events if key in week else 0 for week in weeks]
        typical = (
            None if any(e is None for e in baseline_events)
            else int(statistics.median(e for e in baseline_events if e is not None))
        )  # fmt: skip
        events = _events(rule, [current.events if current else 0, typical])
        usual = statistics.median(history)
        note = f"{_show(value)} against a usual {usual:.4g} (median of {len(history)} weeks)"
        results.append(Observation(group, score, events, note))
    return results


def _had_data(reading: Observation) -> bool:
    if reading.events is None:
        return reading.value is not None
    return reading.events > 0
