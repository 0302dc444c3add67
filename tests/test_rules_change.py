"""Change rules (``compare = "1w"``): the signal against the same window a week (or a day) earlier, as a
percent change, evaluated by the rule service over a real DuckDB event store at injected times."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opswatch.server.rules.baselines import shifted
from opswatch.server.rules.load import RuleError, rule_from_mapping
from opswatch.server.rules.messages import Note, render
from opswatch.server.rules.views import evaluation_view, rule_view
from rules_cast import T0, request
from rules_kinds_harness import Rules

HOUR = 3600.0
WEEK = 7 * 86_400.0
DONATION = "metrics.donation.completed"

DROP: dict[str, Any] = {
    "name": "donations-drop",
    "signal": "count",
    "where": f"operation = '{DONATION}'",
    "group_by": ["service"],
    "window": "1h",
    "compare": "1w",
    "critical": "< -50",
    "min_events": 10,
}


def donations(start: float, count: int, service: str = "giving") -> list[dict[str, Any]]:
    """``count`` completed donations spread over the hour from ``start``."""
    return [
        request(start + i * HOUR / max(count, 1), service=service, operation=DONATION) for i in range(count)
    ]


@pytest.fixture
def rules(tmp_path: Path) -> Iterator[Rules]:
    opened = Rules(tmp_path, [DROP])
    yield opened
    opened.close()


def test_it_reads_the_percent_change_from_the_same_hour_a_week_earlier(rules: Rules) -> None:
    rules.add(donations(T0 - WEEK, 40) + donations(T0, 36) + donations(T0 - HOUR, 400))
    [reading] = rules.reading("donations-drop", T0 + HOUR)
    assert reading.value == pytest.approx(-10.0)
    assert reading.note == "36 now against 40 1 week earlier"
    assert rules.at(T0 + HOUR) == []


def test_it_fires_on_a_drop_past_the_threshold_and_says_both_values(rules: Rules) -> None:
    rules.add(donations(T0 - WEEK, 40) + donations(T0, 12))
    assert rules.at(T0 + HOUR) == ["firing"]
    [note] = rules.notes()
    assert note["value"] == pytest.approx(-70.0)
    assert note["labels"]["service"] == "giving"
    assert note["reason"] == "12 now against 40 1 week earlier"


def test_it_reads_a_group_gone_silent_as_a_fall_of_100_percent(rules: Rules) -> None:
    rules.add(donations(T0 - WEEK, 40) + donations(T0, 30, service="events"))
    assert rules.at(T0 + HOUR) == ["firing"]
    assert rules.status("donations-drop") == {"service=giving": "firing", "service=events": "inactive"}
    assert rules.notes()[0]["value"] == pytest.approx(-100.0)


def test_it_has_no_percentage_after_a_zero_baseline(rules: Rules) -> None:
    rules.add(donations(T0, 30, service="events"))  # nothing a week ago
    [reading] = rules.reading("donations-drop", T0 + HOUR)
    assert reading.value is None
    assert reading.note == "30 now against 0 1 week earlier"
    assert rules.at(T0 + HOUR) == []


def test_it_reads_zero_against_zero_as_no_change(tmp_path: Path) -> None:
    rules = Rules(tmp_path, [{**DROP, "group_by": [], "min_events": 0, "critical": "> 10"}])
    [reading] = rules.reading("donations-drop", T0 + HOUR)
    assert reading.value == 0.0
    rules.close()


def test_it_does_not_judge_a_change_below_min_events_in_both_windows(rules: Rules) -> None:
    rules.add(donations(T0 - WEEK, 8) + donations(T0, 1))  # -87.5 %, but 8 events at most
    [reading] = rules.reading("donations-drop", T0 + HOUR)
    assert reading.value == pytest.approx(-87.5) and reading.events == 8
    assert rules.at(T0 + HOUR) == []
    assert rules.status("donations-drop") == {"service=giving": "inactive"}


def test_it_needs_min_events_in_both_windows_for_a_ratio(tmp_path: Path) -> None:
    errors: dict[str, Any] = {
        "name": "errors-up", "signal": "error_ratio", "window": "1h", "compare": "1d",
        "critical": "> 100", "min_events": 10,
    }  # fmt: skip
    rules = Rules(tmp_path, [errors])
    before = [request(T0 - 86_400 + i * 60, level="error" if i % 10 == 0 else "info") for i in range(50)]
    rules.add([*before, request(T0 + 60, level="error"), request(T0 + 120)])  # 2 requests, 1 failed
    [reading] = rules.reading("errors-up", T0 + HOUR)
    assert reading.value == pytest.approx(400.0) and reading.events == 2
    assert rules.at(T0 + HOUR) == []
    rules.add([request(T0 + 200 + i, level="error" if i % 2 else "info") for i in range(20)])
    assert rules.at(T0 + HOUR + 60) == ["firing"]
    rules.close()


def test_it_resolves_when_the_signal_comes_back(rules: Rules) -> None:
    rules.add(donations(T0 - WEEK, 40) + donations(T0, 10))
    rules.add(donations(T0 - WEEK + HOUR, 40) + donations(T0 + HOUR, 38))
    assert rules.at(T0 + HOUR) == ["firing"]
    assert rules.at(T0 + 2 * HOUR) == ["resolved"]


def test_it_compares_a_week_earlier_on_the_wall_clock_across_daylight_saving() -> None:
    sunday_10_cst = 1_795_968_000.0  # 2026-11-29 10:00 America/Chicago (UTC-6)
    earlier = shifted(sunday_10_cst, 5 * WEEK, "America/Chicago")  # 2026-10-25, still daylight time
    assert sunday_10_cst - earlier == 5 * WEEK + HOUR  # 10:00 CDT is 15:00 UTC, 10:00 CST 16:00
    assert shifted(sunday_10_cst, 5 * WEEK, "UTC") == sunday_10_cst - 5 * WEEK


@pytest.mark.parametrize(
    ("keys", "key", "problem"),
    [
        ({"compare": "30m"}, "compare", "at least the window"),
        ({"compare": "soon"}, "compare", "duration"),
        ({"compare": "1w", "anomaly": {}}, "anomaly", "either a change rule"),
        ({"compare": "1w", "timezone": "Mars/Olympus"}, "timezone", "unknown zone"),
        ({"timezone": "UTC"}, "timezone", "only change"),
    ],
)
def test_it_names_the_key_of_a_bad_change_rule(keys: dict[str, Any], key: str, problem: str) -> None:
    base = {k: v for k, v in DROP.items() if k != "compare"}
    with pytest.raises(RuleError) as caught:
        rule_from_mapping({**base, **keys})
    assert caught.value.key == key
    assert problem in str(caught.value)


def test_it_shows_a_change_rules_keys_as_the_file_spells_them() -> None:
    view = rule_view(rule_from_mapping({**DROP, "timezone": "America/Chicago"}))
    assert (view["kind"], view["compare"], view["timezone"], view["critical"]) == (
        "change", "7d", "America/Chicago", "< -50",
    )  # fmt: skip
    assert "anomaly" not in view and "issues" not in view


def test_its_message_shows_the_change_in_percent_and_both_readings() -> None:
    rule = rule_from_mapping(DROP)
    note = Note(1, rule.name, "firing", {"service": "giving"}, T0, "critical", -70.0, T0,
                "12 now against 40 1 week earlier")  # fmt: skip
    facts = dict(render([note], rule, None).facts)
    assert (facts["Value"], facts["Threshold"]) == ("-70.0%", "< -50%")
    assert facts["Why"] == "12 now against 40 1 week earlier"


def test_rules_eval_shows_both_readings(rules: Rules) -> None:
    rules.add(donations(T0 - WEEK, 40) + donations(T0, 12))
    view = evaluation_view(
        rules.service.rule("donations-drop"), rules.service.preview("donations-drop", T0 + HOUR)
    )
    [instance] = view["instances"]
    assert (instance["value"], instance["level"]) == (pytest.approx(-70.0), "critical")
    assert instance["note"] == "12 now against 40 1 week earlier"
