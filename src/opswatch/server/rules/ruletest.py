"""Unit tests for alert rules (``opswatch rules test FILE``), as ``promtool test rules`` does for Prometheus.

A test file (TOML) names its rules (``rule_files``, relative to the test file, and/or inline
``[[rules]]``) and holds ``[[tests]]``: synthetic events at offsets from the test's start and the alerts
expected at given evaluation times. Each test runs on its own temporary embedded event store (DuckDB)
and state store (SQLite) with an injected clock: the real evaluator (``service.RuleService``), the real
state machine, the real SQL, so what passes here behaves the same on a server. Rules are evaluated every
``interval`` from the start and at each expectation's time; events are stored as their time comes.

At each expectation, the rule's pending and firing instances must be exactly the ones listed: the same
group labels (the ``group_by`` fields; the rule's fixed ``labels`` are left out), the same state, and the
same severity when one is given. ``expect = []`` says nothing is pending or firing. The README's "Testing
rules" section documents the format; ``run_file`` returns a ``Report`` whose ``text()`` is what the CLI
prints.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from ...config import ConfigError
from ...record import format_timestamp
from .. import limits
from .durations import format_duration, parse_duration
from .load import load_file, load_many
from .model import Rule

#: Where a test's clock starts when it names no ``start``: 2026-01-04 00:00 UTC, a Sunday.
DEFAULT_START: Final = 1_767_484_800.0
MAX_EVENTS: Final = limits.RULES_TEST_MAX_EVENTS
MAX_EVALUATIONS: Final = limits.RULES_TEST_MAX_EVALUATIONS
_TOP: Final = frozenset({"rule_files", "rules", "interval", "ingest_delay", "tests"})
_TEST: Final = frozenset({"name", "start", "interval", "events", "alerts"})
_EVENT: Final = frozenset({"at", "repeat", "every", "fields"})
_ALERT: Final = frozenset({"at", "rule", "expect"})
_EXPECT: Final = frozenset({"labels", "state", "severity"})


class TestFileError(ConfigError):
    """The test file is not valid: ``setting`` names the place (``tests[2].alerts[1].at``)."""

    __test__ = False  # not a pytest class


@dataclasses.dataclass(frozen=True)
class Expected:
    """One alert expected at a time: its group labels, state and (optionally) severity."""

    labels: Mapping[str, str]
    state: str = "firing"
    severity: str | None = None

    def matches(self, other: Expected) -> bool:
        """Same labels and state, and the same severity when this one names it."""
        same = dict(self.labels) == dict(other.labels) and self.state == other.state
        return same and (self.severity is None or self.severity == other.severity)

    def __str__(self) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        severity = f" {self.severity}" if self.severity else ""
        return f"{self.state}{severity} {{{labels}}}"


@dataclasses.dataclass(frozen=True)
class Check:
    """The alerts of ``rule`` expected at offset ``at`` (seconds)."""

    at: float
    rule: str
    expect: tuple[Expected, ...]


@dataclasses.dataclass(frozen=True)
class Case:
    """One ``[[tests]]`` table."""

    name: str
    start: float
    interval: float
    events: tuple[tuple[float, dict[str, Any]], ...]
    checks: tuple[Check, ...]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A case's result: the failed checks, each as lines of text (empty: it passed)."""

    name: str
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclasses.dataclass(frozen=True)
class Report:
    """Every case's outcome."""

    origin: str
    outcomes: tuple[Outcome, ...]

    @property
    def passed(self) -> bool:
        return all(outcome.passed for outcome in self.outcomes)

    def text(self) -> str:
        """PASS/FAIL per case, with what differs, and a count."""
        lines = [f"{self.origin}: {len(self.outcomes)} test(s)"]
        for outcome in self.outcomes:
            lines.append(f"  {'PASS' if outcome.passed else 'FAIL'}  {outcome.name}")
            lines.extend(f"        {line}" for failure in outcome.failures for line in failure.splitlines())
        failed = sum(not o.passed for o in self.outcomes)
        lines.append(f"{len(self.outcomes) - failed} passed, {failed} failed")
        return "\n".join(lines)


# -- reading the file ---------------------------------------------------------------------------------


def _fail(where: str, problem: str) -> TestFileError:
    return TestFileError(where, problem)


def _table(value: Any, where: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, "expected a table")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _fail(f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(allowed))})")
    return value


def _seconds(value: Any, where: str, default: float | None = None) -> float:
    if value is None:
        if default is None:
            raise _fail(where, "required (an offset such as '0m', '90s' or '2h')")
        return default
    try:
        return parse_duration(value)
    except ValueError as err:
        raise _fail(where, str(err)) from None


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, "expected an array of tables")
    return value


def _start(value: Any, where: str) -> float:
    if value is None:
        return DEFAULT_START
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise _fail(where, f"expected a time such as 2026-11-29T12:00:00Z, got {value!r}") from None
    else:
        raise _fail(where, "expected a time such as 2026-11-29T12:00:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _events(values: Any, where: str) -> list[tuple[float, dict[str, Any]]]:
    events: list[tuple[float, dict[str, Any]]] = []
    for index, value in enumerate(_list(values, where)):
        place = f"{where}[{index}]"
        table = _table(value, place, _EVENT)
        at = _seconds(table.get("at"), f"{place}.at")
        repeat = table.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise _fail(f"{place}.repeat", f"expected a whole number of 1 or more, got {repeat!r}")
        every = _seconds(table.get("every"), f"{place}.every", 0.0)
        if repeat > 1 and every <= 0:
            raise _fail(f"{place}.every", "required with repeat (the time between two events, e.g. '10s')")
        fields = table.get("fields", {})
        if not isinstance(fields, Mapping):
            raise _fail(f"{place}.fields", "expected a table of field = value")
        if len(events) + repeat > MAX_EVENTS:
            raise _fail(f"{place}.repeat", f"a test may hold at most {MAX_EVENTS} events")
        events.extend((at + i * every, dict(fields)) for i in range(repeat))
    return events


def _expected(value: Any, where: str) -> Expected:
    table = _table(value, where, _EXPECT)
    labels = table.get("labels", {})
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        raise _fail(f"{where}.labels", "expected a table of text labels")
    state = table.get("state", "firing")
    if state not in ("pending", "firing"):
        raise _fail(f"{where}.state", f"expected pending or firing, got {state!r}")
    severity = table.get("severity")
    if severity not in (None, "warning", "critical"):
        raise _fail(f"{where}.severity", f"expected warning or critical, got {severity!r}")
    return Expected(dict(labels), state, severity)


def _checks(values: Any, where: str, rules: Mapping[str, Rule]) -> list[Check]:
    checks: list[Check] = []
    for index, value in enumerate(_list(values, where)):
        place = f"{where}[{index}]"
        table = _table(value, place, _ALERT)
        rule = table.get("rule")
        if rule not in rules:
            raise _fail(f"{place}.rule", f"no rule is called {rule!r} (rules: {', '.join(rules)})")
        if "expect" not in table:
            raise _fail(f"{place}.expect", "required: the alerts expected ([] for none)")
        expect = _list(table["expect"], f"{place}.expect")
        found = tuple(_expected(item, f"{place}.expect[{i}]") for i, item in enumerate(expect))
        checks.append(Check(_seconds(table.get("at"), f"{place}.at"), str(rule), found))
    return checks


def read_file(path: str | Path) -> tuple[list[Rule], list[Case], float]:
    """The rules, the cases and the ingest delay of a test file; ``ConfigError`` naming what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise _fail("rules test", f"cannot read {path}: {err.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise _fail("rules test", f"{path} is not valid TOML: {err}") from None
    top = _table(data, "rules test", _TOP)
    rules: list[Rule] = []
    for index, name in enumerate(_list(top.get("rule_files"), "rule_files")):
        if not isinstance(name, str):
            raise _fail(f"rule_files[{index}]", "expected a path")
        rules.extend(load_file(path.parent / name))
    rules.extend(load_many(_list(top.get("rules"), "rules"), source="file"))
    if not rules:
        raise _fail("rule_files", "name a rules file (rule_files = ['rules.toml']) or write [[rules]] here")
    by_name = {rule.name: rule for rule in rules}
    if len(by_name) != len(rules):
        raise _fail("rules", "two rules have the same name")
    interval = _seconds(top.get("interval"), "interval", 60.0)
    delay = _seconds(top.get("ingest_delay"), "ingest_delay", 0.0)
    cases: list[Case] = []
    for index, value in enumerate(_list(top.get("tests"), "tests")):
        place = f"tests[{index}]"
        table = _table(value, place, _TEST)
        every = _seconds(table.get("interval"), f"{place}.interval", interval)
        if every <= 0:
            raise _fail(f"{place}.interval", "must be longer than 0")
        checks = _checks(table.get("alerts"), f"{place}.alerts", by_name)
        last = max((check.at for check in checks), default=0.0)
        if last / every > MAX_EVALUATIONS:
            raise _fail(f"{place}.interval", f"at most {MAX_EVALUATIONS} evaluations per test")
        cases.append(
            Case(
                name=str(table.get("name") or f"test {index + 1}"),
                start=_start(table.get("start"), f"{place}.start"),
                interval=every,
                events=tuple(_events(table.get("events"), f"{place}.events")),
                checks=tuple(checks),
            )
        )
    if not cases:
        raise _fail("tests", "no [[tests]] in the file")
    return rules, cases, delay


# -- running ------------------------------------------------------------------------------------------

_ids = itertools.count(1)


def event_record(at: float, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A stored event at ``at`` (epoch seconds) with ``fields`` over the defaults: level ``info``, kind
    ``error`` for error/fatal levels (``log`` otherwise), service ``app``, environment ``production``."""
    level = str(fields.get("level", "info"))
    stamp = format_timestamp(at)
    record: dict[str, Any] = {
        "timestamp": stamp,
        "received_at": stamp,
        "level": level,
        "kind": "error" if level in ("error", "fatal") else "log",
        "logger": "app",
        "message": "event",
        "event_id": f"{next(_ids):032x}",
        "service": "app",
        "environment": "production",
        "project_id": 1,
    }
    record.update(fields)
    return record


def run_case(case: Case, rules: Sequence[Rule], ingest_delay: float) -> Outcome:
    """Run one case on a fresh temporary store and state."""
    from ..state import rules as rule_tables
    from ..state.base import create_engine_for
    from ..store.duckdb import DuckDBStore
    from .service import RuleService
    from .signals import EventQuerySource

    times = {check.at for check in case.checks}
    last = max(times, default=0.0)
    times |= {step * case.interval for step in range(int(last // case.interval) + 1)}
    events = sorted(case.events, key=lambda item: item[0])
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="opswatch-rules-test-") as folder:
        engine = create_engine_for(f"sqlite:///{Path(folder) / 'state.db'}")
        try:
            rule_tables.install(engine)
            with DuckDBStore(Path(folder) / "events.duckdb") as store:
                service = RuleService(engine, EventQuerySource(store), rules, ingest_delay=ingest_delay)
                stored = 0
                for offset in sorted(times):
                    now = case.start + offset
                    due = [event_record(case.start + at, f) for at, f in events[stored:] if at <= offset]
                    if due:
                        store.append(due)
                        stored += len(due)
                    service.run_once(now)
                    for check in (c for c in case.checks if c.at == offset):
                        failure = _compare(check, service)
                        if failure:
                            failures.append(failure)
        finally:
            engine.dispose()
    return Outcome(case.name, tuple(failures))


def _compare(check: Check, service: Any) -> str | None:
    """The difference between what ``check`` expects and the rule's pending and firing instances."""
    rule: Rule = service.rules[check.rule]
    fixed = set(rule.labels) | {"rule"}
    got = [
        Expected({k: v for k, v in i.labels.items() if k not in fixed}, i.status, i.severity)
        for _name, i in service.state.all_instances(check.rule)
        if i.status in ("pending", "firing")
    ]
    missing = [e for e in check.expect if not any(e.matches(g) for g in got)]
    unexpected = [g for g in got if not any(e.matches(g) for e in check.expect)]
    if not missing and not unexpected:
        return None
    lines = [f"at {format_duration(check.at)}, rule {check.rule}:"]
    lines.append("  expected: " + ("; ".join(map(str, check.expect)) or "nothing pending or firing"))
    lines.append("  got:      " + ("; ".join(map(str, got)) or "nothing pending or firing"))
    lines += [f"  - missing:    {e}" for e in missing]
    lines += [f"  + unexpected: {g}" for g in unexpected]
    return "\n".join(lines)


def run_file(path: str | Path) -> Report:
    """Read and run a test file; ``ConfigError`` when it (or a rules file it names) is not valid."""
    rules, cases, delay = read_file(path)
    return Report(str(path), tuple(run_case(case, rules, delay) for case in cases))
