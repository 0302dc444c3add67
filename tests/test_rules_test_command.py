"""``opswatch rules test FILE``: unit tests for rules on a temporary store with an injected clock, as
``promtool test rules`` does; the shipped example passes and a wrong expectation fails with a diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from opswatch.cli import main
from opswatch.config import ConfigError
from opswatch.server import limits
from opswatch.server.rules.ruletest import read_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPIKE = f"""
rule_files = ["{EXAMPLES / "rules.toml"}"]

[[tests]]
name = "spike"

[[tests.events]]
at = "0m"
repeat = 60
every = "10s"
fields = {{ service = "checkout" }}

[[tests.events]]
at = "1m"
repeat = 20
every = "10s"
fields = {{ service = "checkout", level = "error" }}
"""


def run(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, str]:
    code = main(["rules", "test", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules_test.toml"
    path.write_text(text)
    return path


def test_the_shipped_example_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, EXAMPLES / "rules_test.toml")
    assert code == 0, out
    assert "PASS  a checkout error spike goes pending, fires critical, and resolves" in out
    assert "PASS  no donation for two hours on a Sunday morning fires" in out
    assert out.rstrip().endswith("2 passed, 0 failed")


def test_a_wrong_expectation_fails_with_what_was_missing_and_what_came_instead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = (
        (EXAMPLES / "rules_test.toml")
        .read_text()
        .replace(
            'at = "5m"\nrule = "high-error-rate"\nexpect = [{ labels = { service = "checkout" }, state = "firing", '
            'severity = "critical" }]',
            'at = "5m"\nrule = "high-error-rate"\nexpect = [{ labels = { service = "checkout" }, state = "firing", '
            'severity = "warning" }]',
        )
    )
    assert 'severity = "warning"' in wrong
    (tmp_path / "rules.toml").write_text((EXAMPLES / "rules.toml").read_text())
    code, out, _err = run(capsys, write(tmp_path, wrong))
    assert code == 1
    assert "FAIL  a checkout error spike goes pending, fires critical, and resolves" in out
    assert "at 5m, rule high-error-rate:" in out
    assert "- missing:    firing warning {service=checkout}" in out
    assert "+ unexpected: firing critical {service=checkout}" in out
    assert "PASS  no donation for two hours on a Sunday morning fires" in out
    assert out.rstrip().endswith("1 passed, 1 failed")


def test_it_fails_when_nothing_is_expected_but_an_alert_is_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SPIKE + '\n[[tests.alerts]]\nat = "3m"\nrule = "high-error-rate"\nexpect = []\n'
    code, out, _err = run(capsys, write(tmp_path, text))
    assert code == 1
    assert "expected: nothing pending or firing" in out
    assert "+ unexpected: pending critical {service=checkout}" in out


def test_it_runs_inline_rules_and_lets_a_test_choose_its_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = """
[[rules]]
name = "slow-search"
signal = "p95"
where = "service = 'search'"
window = "10m"
critical = "> 500"
for = "4m"

[[tests]]
name = "slow for long enough"
interval = "2m"

[[tests.events]]
at = "0m"
repeat = 30
every = "20s"
fields = { service = "search", duration_ms = 900 }

[[tests.alerts]]
at = "2m"
rule = "slow-search"
expect = [{ state = "pending" }]

[[tests.alerts]]
at = "6m"
rule = "slow-search"
expect = [{ state = "firing", severity = "critical" }]
"""
    code, out, _err = run(capsys, write(tmp_path, text))
    assert code == 0, out
    assert "PASS  slow for long enough" in out


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            '\n[[tests.alerts]]\nat = "1m"\nrule = "nope"\nexpect = []\n',
            "tests[0].alerts[0].rule: no rule is called 'nope'",
        ),
        (
            '\n[[tests.alerts]]\nat = "soon"\nrule = "high-error-rate"\nexpect = []\n',
            "tests[0].alerts[0].at:",
        ),
        ('\n[[tests.alerts]]\nat = "1m"\nrule = "high-error-rate"\n', "tests[0].alerts[0].expect: required"),
        (
            '\n[[tests.alerts]]\nat = "1m"\nrule = "high-error-rate"\nexpect = [{ state = "on" }]\n',
            "tests[0].alerts[0].expect[0].state: expected pending or firing",
        ),
        ('\n[[tests.events]]\nat = "0m"\nrepeat = 5\n', "tests[0].events[2].every: required with repeat"),
        ('\n[[tests.events]]\nwhen = "0m"\n', "tests[0].events[2].when: unknown key"),
    ],
)
def test_it_refuses_a_bad_test_file_naming_the_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str, named: str
) -> None:
    code, _out, err = run(capsys, write(tmp_path, SPIKE + change))
    assert code == 2
    assert named in err


def test_it_names_the_rule_and_key_of_a_bad_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        '[[rules]]\nname = "x"\nsignal = "count"\nwindow = "5m"\ncritical = "lots"\n[[tests]]\nname = "t"\n'
    )
    code, _out, err = run(capsys, write(tmp_path, text))
    assert code == 2 and "rule 'x' critical" in err


def test_it_takes_events_and_evaluations_up_to_the_limits_and_refuses_more(tmp_path: Path) -> None:
    most, rounds = limits.RULES_TEST_MAX_EVENTS, limits.RULES_TEST_MAX_EVALUATIONS
    head = f'rule_files = ["{EXAMPLES / "rules.toml"}"]\n[[tests]]\nname = "big"\ninterval = "1s"\n'
    events = '[[tests.events]]\nat = "0s"\nrepeat = {}\nevery = "1s"\n'
    check = '[[tests.alerts]]\nat = {}\nrule = "no-donations"\nexpect = []\n'
    _rules, [case], _delay = read_file(write(tmp_path, head + events.format(most) + check.format(rounds)))
    assert len(case.events) == most and case.checks[0].at == rounds
    with pytest.raises(ConfigError, match=r"tests\[0\]\.events\[0\]\.repeat: a test may hold at most"):
        read_file(write(tmp_path, head + events.format(most + 1)))
    with pytest.raises(ConfigError, match=r"tests\[0\]\.interval: at most"):
        read_file(write(tmp_path, head + check.format(rounds + 1)))
