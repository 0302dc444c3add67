"""Anomaly rules against a seasonal baseline (the same hour of the week over the last weeks), on a
church's synthetic but realistic donation rhythm: quiet nights, a little giving on weekdays, a midweek
service on Wednesday evening and a strong Sunday morning peak, with Poisson-like noise from week to week.

A normal Sunday is not an anomaly (its peak is compared with earlier Sunday peaks); a Sunday whose
donations collapsed is; a Tuesday afternoon spike is; and nothing fires before enough weeks of history.
"""

from __future__ import annotations

import datetime
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from opswatch.server import limits
from opswatch.server.rules.load import RuleError, rule_from_mapping
from opswatch.server.rules.views import rule_view
from rules_cast import request
from rules_kinds_harness import Rules

ZONE = ZoneInfo("America/Chicago")
#: Sunday 2026-11-29 00:00 in Chicago: the week under watch starts here.
SUNDAY = datetime.datetime(2026, 11, 29, tzinfo=ZONE)
DONATION = "metrics.donation.completed"

ANOMALY: dict[str, Any] = {
    "name": "donations-anomaly",
    "signal": "count",
    "where": f"operation = '{DONATION}'",
    "window": "1h",
    "anomaly": {"weeks": 4, "min_weeks": 3, "direction": "both"},
    "timezone": "America/Chicago",
    "critical": "> 4",
}
SPIKES = {**ANOMALY, "name": "donation-spikes", "anomaly": {"weeks": 4, "direction": "above"}}


def usual(day: int, hour: int) -> float:
    """Donations expected in an hour of the week (day 0 is Sunday), local time."""
    if day == 0:
        return {8: 15, 9: 45, 10: 60, 11: 50, 12: 20}.get(hour, 6 if 13 <= hour <= 20 else 0.3)
    if day == 3 and hour in (18, 19):
        return 12  # the midweek service
    return 3 if 8 <= hour <= 20 else 0.3


def week_of_donations(
    start: datetime.datetime, rng: random.Random, scale: Callable[[int, int], float] = lambda d, h: 1.0
) -> list[dict[str, Any]]:
    """One week of donation records from ``start`` (a local Sunday midnight), noisy hour by hour."""
    records = []
    for day in range(7):
        for hour in range(24):
            mean = usual(day, hour) * scale(day, hour)
            count = max(0, round(rng.gauss(mean, math.sqrt(mean))))
            begin = (start + datetime.timedelta(days=day, hours=hour)).timestamp()
            records += [request(begin + (i + 0.5) * 3600 / count, operation=DONATION) for i in range(count)]
    return records


def at(day: int, hour: int) -> float:
    """The end of local hour ``hour`` of ``day`` in the watched week: the evaluation that judges it."""
    return (SUNDAY + datetime.timedelta(days=day, hours=hour + 1)).timestamp()


def church(tmp_path: Path, *, weeks: int = 4, scale: Callable[[int, int], float] = lambda d, h: 1.0) -> Rules:
    rng = random.Random(2026)
    rules = Rules(tmp_path, [ANOMALY, SPIKES])
    for back in range(weeks, 0, -1):
        rules.add(week_of_donations(SUNDAY - datetime.timedelta(weeks=back), rng))
    rules.add(week_of_donations(SUNDAY, rng, scale))
    return rules


def fired(rules: Rules, hours: list[tuple[int, int]]) -> dict[tuple[int, int], list[str]]:
    """Evaluate at the end of each (day, hour); the messages of those that logged any."""
    said = {}
    for day, hour in hours:
        kinds = rules.at(at(day, hour))
        if kinds:
            said[(day, hour)] = kinds
    return said


def test_it_does_not_call_a_normal_sunday_or_weekday_an_anomaly(tmp_path: Path) -> None:
    rules = church(tmp_path)
    assert fired(rules, [(day, hour) for day in (0, 2, 3) for hour in range(24)]) == {}
    [peak] = rules.reading("donations-anomaly", at(0, 10))
    assert peak.value is not None and peak.value < 2
    assert "median of 4 weeks" in (peak.note or "")
    rules.close()


def test_it_fires_when_sunday_donations_collapse(tmp_path: Path) -> None:
    rules = church(tmp_path, scale=lambda day, hour: 0.1 if day == 0 and 9 <= hour <= 11 else 1.0)
    said = fired(rules, [(0, hour) for hour in range(8, 14)])
    assert said == {(0, 9): ["firing"], (0, 12): ["resolved"]}
    [firing] = [n for n in rules.notes() if n["kind"] == "firing"]
    assert firing["rule"] == "donations-anomaly"  # the spike rule watches only upward moves
    assert firing["reason"] == "5 against a usual 44.5 (median of 4 weeks)"
    rules.close()


def test_it_fires_on_a_tuesday_afternoon_spike(tmp_path: Path) -> None:
    rules = church(tmp_path, scale=lambda day, hour: 12.0 if (day, hour) == (2, 14) else 1.0)
    said = fired(rules, [(2, hour) for hour in range(8, 18)])
    assert said == {(2, 14): ["firing", "firing"], (2, 15): ["resolved", "resolved"]}
    assert {n["rule"] for n in rules.notes()} == {"donations-anomaly", "donation-spikes"}
    rules.close()


def test_it_cannot_fire_before_min_weeks_of_history(tmp_path: Path) -> None:
    rules = church(tmp_path, weeks=2, scale=lambda day, hour: 0.1 if day == 0 and 9 <= hour <= 11 else 1.0)
    assert fired(rules, [(0, hour) for hour in range(8, 14)]) == {}
    [reading] = rules.reading("donations-anomaly", at(0, 10))
    assert reading.value is None
    assert reading.note == "2 of 4 weeks of history; 3 needed"
    rules.close()


@pytest.mark.parametrize(
    ("anomaly", "problem"),
    [
        ({"weeks": 0}, "weeks: expected a whole number from 1 to 8"),
        ({"weeks": 9}, "from 1 to 8"),
        ({"weeks": 2, "min_weeks": 3}, "min_weeks: expected a whole number from 1 to weeks (2)"),
        ({"direction": "sideways"}, "direction: expected one of above, below, both"),
        ({"season": "week"}, "expected { weeks = 4"),
    ],
)
def test_it_names_the_key_of_a_bad_anomaly_rule(anomaly: dict[str, Any], problem: str) -> None:
    with pytest.raises(RuleError) as caught:
        rule_from_mapping({**ANOMALY, "anomaly": anomaly})
    assert caught.value.key == "anomaly"
    assert problem in str(caught.value)


def test_it_keeps_an_anomaly_windows_to_a_day() -> None:
    with pytest.raises(RuleError) as caught:
        rule_from_mapping({**ANOMALY, "window": "2d"})
    assert caught.value.key == "window"


def test_it_shows_an_anomaly_rules_baseline_in_its_view() -> None:
    view = rule_view(rule_from_mapping(ANOMALY))
    assert view["kind"] == "anomaly"
    assert view["anomaly"] == {"weeks": 4, "min_weeks": 3, "direction": "both"}
    assert view["timezone"] == "America/Chicago"


def test_it_takes_up_to_the_weeks_limit() -> None:
    most = limits.RULES_ANOMALY_MAX_WEEKS
    assert rule_from_mapping({**ANOMALY, "anomaly": {"weeks": most}}).anomaly is not None
    with pytest.raises(RuleError, match=f"from 1 to {most}"):
        rule_from_mapping({**ANOMALY, "anomaly": {"weeks": most + 1}})
