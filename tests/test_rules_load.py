"""Rule files: the TOML contract of issue 12, and errors that name the rule and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from opswatch.config import ConfigError
from opswatch.server.rules.load import RuleError, load_file, load_text, rule_from_mapping

ISSUE_EXAMPLE = """
[[rules]]
name = "high-error-rate"
signal = "error_ratio"
where = "environment = 'production'"
group_by = ["service"]
window = "5m"
warning = "> 0.02"
critical = "> 0.05"
resolve = "< 0.01"
min_events = 20
for = "2m"
template = "high_error_rate"

[[rules]]
name = "no-donations"
signal = "count"
where = "operation = 'metrics.donation.completed'"
window = "2h"
critical = "< 1"
active = { schedule = "0 8-20 * * 0", timezone = "America/Chicago" }
"""


def _rule(**keys: object) -> dict[str, object]:
    return {"name": "r", "signal": "count", "window": "5m", "critical": "> 10", **keys}


def test_it_loads_the_issue_example(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(ISSUE_EXAMPLE)
    errors, donations = load_file(path)
    assert errors.name == "high-error-rate" and errors.signal == "error_ratio"
    assert errors.group_by == ("service",) and errors.window == 300 and errors.for_ == 120
    assert (errors.warning and str(errors.warning)) == "> 0.02"
    assert errors.level(0.03) == "warning" and errors.level(0.06) == "critical" and errors.level(0.01) is None
    assert errors.resolve is not None and errors.resolve.matches(0.005) and not errors.resolve.matches(0.01)
    assert errors.min_events == 20 and errors.template == "high_error_rate"
    assert donations.active is not None and donations.active.timezone == "America/Chicago"
    assert donations.window == 7200 and donations.level(0) == "critical" and donations.level(1) is None


def test_it_reads_every_key_of_the_contract() -> None:
    rule = rule_from_mapping(
        _rule(
            signal="p95",
            keep_firing_for="10m",
            channels=["slack"],
            labels={"team": "payments"},
            no_data="alerting",
            on_error="ok",
            group_by=["operation"],
            group_notifications_by=["team"],
        )
    )
    assert rule.field == "duration_ms" and rule.keep_firing_for == 600
    assert rule.channels == ("slack",) and rule.labels == {"team": "payments"}
    assert rule.no_data == "alerting" and rule.on_error == "ok"
    assert rule.group_notifications_by == ("team",)


def test_it_takes_a_sql_rule_without_naming_the_signal() -> None:
    rule = rule_from_mapping(
        {"name": "s", "sql": "SELECT service, COUNT(*) AS value FROM logs GROUP BY service",
         "window": "10m", "critical": "> 5"}
    )  # fmt: skip
    assert rule.signal == "sql" and rule.sql is not None


@pytest.mark.parametrize(
    ("keys", "key", "words"),
    [
        ({"signal": "median"}, "signal", "expected one of"),
        ({"window": None}, "window", "required"),
        ({"window": "5 minutes"}, "window", "'30s', '5m'"),
        ({"window": "40d"}, "window", "at most 31 days"),
        ({"critical": "0.05"}, "critical", "comparison"),
        ({"critical": None}, "critical", "needs 'critical' or 'warning'"),
        ({"warning": "> 20"}, "warning", "beyond critical"),
        ({"warning": "< 2"}, "warning", "opposite directions"),
        ({"resolve": "> 1"}, "resolve", "point away"),
        ({"resolve": "< 11"}, "resolve", "overlaps"),
        ({"min_events": -1}, "min_events", "0 or more"),
        ({"for": "soon"}, "for", "duration"),
        ({"template": "payment_failed"}, "template", "expected one of"),
        ({"no_data": "ignore"}, "no_data", "ok, alerting, keep_last"),
        ({"on_error": "fire"}, "on_error", "ok, alerting, keep_last"),
        ({"severity": "high"}, "severity", "unknown key"),
        ({"signal": "sum"}, "field", "needs the field"),
        ({"field": "amount"}, "field", "takes no field"),
        ({"group_by": ["service; DROP"]}, "group_by", "not a field name"),
        ({"labels": {"rule": "x"}}, "labels", "'rule'"),
        ({"active": {"schedule": "every 5 minutes"}}, "active", "crontab"),
        ({"active": {"schedule": "0 8 * * 0", "timezone": "Mars/Olympus"}}, "active", "Mars/Olympus"),
        ({"group_notifications_by": ["team"]}, "group_notifications_by", "neither"),
        ({"signal": "sql"}, "sql", "needs 'sql'"),
        ({"inhibits": {"matchers": []}}, "inhibits", "non-empty list"),
        ({"inhibits": {"matchers": ["service"]}}, "inhibits", "name=value"),
        ({"inhibits": {"matchers": ["rule=x"], "equal": ["a b"]}}, "inhibits", "label names"),
    ],
)
def test_it_names_the_rule_and_the_key_of_a_bad_value(keys: dict[str, object], key: str, words: str) -> None:
    data = _rule(**keys)
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(RuleError) as caught:
        rule_from_mapping(data)
    assert caught.value.rule == "r" and caught.value.key == key
    assert words in str(caught.value) and "rule 'r'" in str(caught.value)


@pytest.mark.parametrize(
    "where",
    [
        "1=1; DROP TABLE logs",
        "service IN (SELECT name FROM read_csv('/etc/passwd'))",
        "service = 'a' LIMIT (",
    ],
)
def test_it_checks_where_like_the_query_api(where: str) -> None:
    with pytest.raises(RuleError) as caught:
        rule_from_mapping(_rule(where=where))
    assert caught.value.key == "where"


def test_it_refuses_a_sql_rule_the_query_api_would_refuse() -> None:
    with pytest.raises(RuleError, match="only SELECT") as caught:
        rule_from_mapping({"name": "s", "sql": "DELETE FROM logs", "window": "5m", "critical": "> 1"})
    assert caught.value.key == "sql"


def test_it_refuses_two_rules_with_one_name() -> None:
    with pytest.raises(RuleError, match="unique"):
        load_text('[[rules]]\nname="a"\nsignal="count"\nwindow="1m"\ncritical="> 1"\n' * 2)


def test_it_names_the_file_when_the_toml_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[[rules]\nname=")
    with pytest.raises(ConfigError, match=r"rules\.toml is not valid TOML"):
        load_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="unknown top-level key 'rule'"):
        load_text('[[rule]]\nname="a"')


def test_it_takes_rules_up_to_the_limit_and_refuses_one_more() -> None:
    from opswatch.server import limits
    from opswatch.server.rules.load import load_many

    tables = [
        {"name": f"r{i}", "signal": "count", "window": "1m", "critical": "> 1"}
        for i in range(limits.RULES_MAX)
    ]
    assert len(load_many(tables)) == limits.RULES_MAX
    with pytest.raises(ConfigError, match="over the limit of 1000"):
        load_many([*tables, {"name": "one-more", "signal": "count", "window": "1m", "critical": "> 1"}])
