"""Rules from TOML text, a file or JSON-like mappings, validated with errors that name the rule and key.

``load_file(path)`` / ``load_text(text)`` read the ``[[rules]]`` tables of a rules file;
``rule_from_mapping(data)`` builds one rule (the API and the defaults use it too). Every problem raises
``RuleError``, a ``ConfigError`` whose setting reads ``rule 'high-error-rate' critical`` and whose
message says what is allowed, so ``opswatch serve`` and ``opswatch rules check`` fail with one line a
person can act on. ``where`` and ``sql`` go through the same read-only SQL checks as ``/api/0/query``
(``opswatch.server.query.check_sql``) against the ``logs`` view, so a rule can never run what the query
API would refuse.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...config import ConfigError
from ...crons.schedule import ScheduleError, parse_schedule
from .. import limits
from ..query import check_sql
from ..store.base import QueryRefused, SchemaInfo
from ..store.layout import CORE_NAMES, VIEWS
from .durations import parse_duration
from .inhibit import Inhibits
from .model import (
    DIRECTIONS,
    FIELD_SIGNALS,
    ISSUE_SIGNALS,
    MONITOR_SIGNALS,
    POLICIES,
    PRESENCE_SIGNALS,
    SIGNALS,
    Active,
    Anomaly,
    Direction,
    IssueFilter,
    Policy,
    Rule,
    Threshold,
)
from .silences import SilenceError, parse_matcher_text

#: Message templates a rule may name (``opswatch.alerts.templates``); ``alert`` is the generic one.
TEMPLATES: Final = ("alert", "high_error_rate")

KEYS: Final = (
    "name", "signal", "field", "where", "sql", "group_by", "window", "warning", "critical", "resolve",
    "min_events", "for", "keep_firing_for", "template", "active", "channels", "labels", "no_data",
    "on_error", "group_notifications_by", "inhibits", "compare", "anomaly", "timezone", "issues",
)  # fmt: skip

_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_THRESHOLD: Final = re.compile(r"^\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
#: What the checks may name when no store is at hand: the views and the common fields.
STATIC_SCHEMA: Final = SchemaInfo(tables=VIEWS, columns=CORE_NAMES, aliases={})


class RuleError(ConfigError):
    """A rule is not valid: ``setting`` names the rule and the key."""

    def __init__(self, rule: str, key: str | None, problem: str) -> None:
        super().__init__(f"rule {rule!r}" + (f" {key}" if key else ""), problem)
        self.rule = rule
        self.key = key


def load_file(path: str | Path, *, schema: SchemaInfo = STATIC_SCHEMA) -> list[Rule]:
    """The rules of a TOML file; ``ConfigError`` naming the file when it cannot be read or parsed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError("rules_file", f"cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError("rules_file", f"{path} is not UTF-8 text") from None
    return load_text(text, source="file", origin=str(path), schema=schema)


def load_text(
    text: str, *, source: str = "file", origin: str = "rules file", schema: SchemaInfo = STATIC_SCHEMA
) -> list[Rule]:
    """The rules of TOML ``text`` (an array of ``[[rules]]`` tables)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError("rules_file", f"{origin} is not valid TOML: {err}") from None
    unknown = sorted(set(data) - {"rules"})
    if unknown:
        raise ConfigError(
            "rules_file", f"{origin}: unknown top-level key {unknown[0]!r} (expected [[rules]])"
        )
    tables = data.get("rules", [])
    if not isinstance(tables, list):
        raise ConfigError("rules_file", f"{origin}: 'rules' must be an array of tables ([[rules]])")
    return load_many(tables, source=source, schema=schema)


def load_many(
    tables: Sequence[Any], *, source: str = "file", schema: SchemaInfo = STATIC_SCHEMA
) -> list[Rule]:
    """Rules from mappings, checking that names are unique and that there are not too many."""
    if len(tables) > limits.RULES_MAX:
        raise ConfigError("rules_file", f"{len(tables)} rules, over the limit of {limits.RULES_MAX}")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        rule = rule_from_mapping(table, source=source, position=index + 1, schema=schema)
        if rule.name in seen:
            raise RuleError(rule.name, "name", "two rules have this name; names must be unique")
        seen.add(rule.name)
        rules.append(rule)
    return rules


def rule_from_mapping(
    data: Any, *, source: str = "api", position: int | None = None, schema: SchemaInfo = STATIC_SCHEMA
) -> Rule:
    """One rule from a mapping of the file's keys; ``RuleError`` names the first problem."""
    label = f"#{position}" if position is not None else "(unnamed)"
    if not isinstance(data, Mapping):
        raise RuleError(label, None, "expected a table of rule keys")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RuleError(label, "name", f"expected letters, digits, '-', '_' or '.' (up to 100), got {name!r}")
    return _Builder(name, data, schema).build(source)


class _Builder:
    """Reads one rule's keys in order; every error names ``self.name`` and the key."""

    def __init__(self, name: str, data: Mapping[str, Any], schema: SchemaInfo) -> None:
        self.name = name
        self.data = data
        self.schema = schema

    def fail(self, key: str, problem: str) -> RuleError:
        return RuleError(self.name, key, problem)

    def build(self, source: str) -> Rule:
        unknown = [key for key in self.data if key not in KEYS]
        if unknown:
            raise self.fail(unknown[0], f"unknown key (known: {', '.join(KEYS)})")
        sql = self.text("sql")
        signal = self.data.get("signal", "sql" if sql is not None else None)
        if signal not in SIGNALS:
            raise self.fail("signal", f"expected one of {', '.join(SIGNALS)}, got {signal!r}")
        if (signal == "sql") != (sql is not None):
            raise self.fail("sql", "a SQL rule needs 'sql' (and signal 'sql' or none); others take none")
        group_by = self.identifiers("group_by")
        warning, critical, resolve = self.thresholds(signal)
        labels = self.labels(group_by)
        rule = Rule(
            name=self.name,
            signal=signal,
            window=self.duration("window", required=True, positive=True),
            field=self.field(signal),
            where=self.where(),
            sql=self.checked_sql(sql),
            group_by=group_by,
            warning=warning,
            critical=critical,
            resolve=resolve,
            min_events=self.count("min_events"),
            for_=self.duration("for"),
            keep_firing_for=self.duration("keep_firing_for"),
            template=self.choice("template", TEMPLATES, None),
            active=self.active(),
            channels=self.strings("channels"),
            labels=labels,
            no_data=cast(Policy, self.choice("no_data", POLICIES, "ok")),
            on_error=cast(Policy, self.choice("on_error", POLICIES, "keep_last")),
            group_notifications_by=self.notification_groups(group_by, labels),
            inhibits=self.inhibits(),
            source=source,
        )
        if signal == "sql" and group_by:
            raise self.fail("group_by", "a SQL rule's groups are the columns it returns besides 'value'")
        return self.kinds(rule)

    def kinds(self, rule: Rule) -> Rule:
        """The keys of the change, anomaly and issue kinds (``compare``, ``anomaly``, ``timezone``,
        ``issues``), checked against each other and the rest of the rule."""
        issue = rule.signal in ISSUE_SIGNALS or rule.signal in MONITOR_SIGNALS
        compare = self.data.get("compare")
        seconds = None
        if compare is not None:
            seconds = self.duration("compare", positive=True)
            if seconds < rule.window:
                raise self.fail("compare", "must be at least the window (the two windows would overlap)")
        anomaly = self.anomaly(rule.window)
        if seconds is not None and anomaly is not None:
            raise self.fail("anomaly", "a rule is either a change rule (compare) or an anomaly rule")
        if issue and (seconds is not None or anomaly is not None):
            raise self.fail(
                "compare" if seconds is not None else "anomaly", "issue and monitor signals take no baseline"
            )
        zone = self.zone(rule)
        if "timezone" in self.data and seconds is None and anomaly is None:
            raise self.fail("timezone", "only change (compare) and anomaly rules shift by the calendar")
        filters = self.issue_filter(rule.signal)
        if issue:
            if rule.where is not None:
                raise self.fail(
                    "where", "issue rules choose issues with 'issues' ({ level, environment, project })"
                )
            if rule.group_by:
                raise self.fail("group_by", "issue and monitor rules have one instance per issue or monitor")
        return dataclasses.replace(
            rule,
            compare=seconds,
            anomaly=anomaly,
            timezone=zone,
            issues=filters if rule.signal in ISSUE_SIGNALS else None,
        )

    def anomaly(self, window: float) -> Anomaly | None:
        value = self.data.get("anomaly")
        if value is None:
            return None
        allowed = {"weeks", "min_weeks", "direction"}
        if not isinstance(value, Mapping) or set(value) - allowed:
            raise self.fail(
                "anomaly", "expected { weeks = 4, min_weeks = 3, direction = 'above|below|both' }"
            )
        most = limits.RULES_ANOMALY_MAX_WEEKS
        weeks = value.get("weeks", 4)
        if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= most:
            raise self.fail("anomaly", f"weeks: expected a whole number from 1 to {most}, got {weeks!r}")
        least = value.get("min_weeks", min(3, weeks))
        if isinstance(least, bool) or not isinstance(least, int) or not 1 <= least <= weeks:
            raise self.fail(
                "anomaly", f"min_weeks: expected a whole number from 1 to weeks ({weeks}), got {least!r}"
            )
        direction = value.get("direction", "both")
        if direction not in DIRECTIONS:
            raise self.fail(
                "anomaly", f"direction: expected one of {', '.join(DIRECTIONS)}, got {direction!r}"
            )
        if window > 86_400:
            raise self.fail("window", "an anomaly rule's window is at most 1d (it is compared hour of week)")
        return Anomaly(weeks, least, cast(Direction, direction))

    def zone(self, rule: Rule) -> str:
        value = self.data.get("timezone")
        if value is None:
            return rule.active.timezone if rule.active is not None else "UTC"
        if not isinstance(value, str):
            raise self.fail("timezone", f"expected a zone name such as 'America/Chicago', got {value!r}")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail(
                "timezone", f"unknown zone {value!r} (expected a name such as 'America/Chicago')"
            ) from None
        return value

    def issue_filter(self, signal: str) -> IssueFilter:
        value = self.data.get("issues")
        if value is None:
            return IssueFilter()
        if signal not in ISSUE_SIGNALS:
            raise self.fail("issues", f"only issue signals ({', '.join(ISSUE_SIGNALS)}) choose issues")
        if not isinstance(value, Mapping) or set(value) - {"level", "environment", "project"}:
            raise self.fail(
                "issues", "expected { level = 'error|fatal', environment = '<name>', project = <id> }"
            )
        level, environment, project = value.get("level"), value.get("environment"), value.get("project")
        if level is not None and level not in ("error", "fatal"):
            raise self.fail("issues", f"level: expected 'error' or 'fatal', got {level!r}")
        if environment is not None and (not isinstance(environment, str) or not environment):
            raise self.fail("issues", f"environment: expected a name, got {environment!r}")
        if project is not None and (isinstance(project, bool) or not isinstance(project, int)):
            raise self.fail("issues", f"project: expected a project id (a whole number), got {project!r}")
        return IssueFilter(level, environment, project)

    # -- keys ---------------------------------------------------------------------------------------

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected non-empty text, got {value!r}")
        return value

    def duration(self, key: str, *, required: bool = False, positive: bool = False) -> float:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.fail(key, "required (a duration such as '5m')")
            return 0.0
        try:
            seconds = parse_duration(value)
        except ValueError as err:
            raise self.fail(key, str(err)) from None
        if positive and seconds <= 0:
            raise self.fail(key, "must be longer than 0")
        if seconds > limits.RULES_MAX_WINDOW_SECONDS:
            raise self.fail(key, f"must be at most {limits.RULES_MAX_WINDOW_SECONDS // 86_400} days")
        return seconds

    def count(self, key: str) -> int:
        value = self.data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, f"expected a whole number of 0 or more, got {value!r}")
        return value

    def choice(self, key: str, allowed: Iterable[str], default: str | None) -> str | None:
        value = self.data.get(key, default)
        options = tuple(allowed)
        if value is None:
            return None
        if value not in options:
            raise self.fail(key, f"expected one of {', '.join(options)}, got {value!r}")
        return str(value)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"expected a list of names, got {value!r}")
        return tuple(value)

    def identifiers(self, key: str) -> tuple[str, ...]:
        names = self.strings(key)
        for name in names:
            if not _IDENTIFIER.match(name):
                raise self.fail(key, f"{name!r} is not a field name (letters, digits and '_')")
        if len(set(names)) != len(names):
            raise self.fail(key, "a field is named twice")
        return names

    def field(self, signal: str) -> str | None:
        value = self.text("field")
        if signal == "issue_users":
            if value is not None and not _IDENTIFIER.match(value):
                raise self.fail("field", f"{value!r} is not a field name (letters, digits and '_')")
            return value or "user_id"
        if signal in FIELD_SIGNALS:
            if value is None:
                if signal.startswith("p"):
                    return "duration_ms"
                raise self.fail("field", f"the {signal} signal needs the field it is computed over")
            if not _IDENTIFIER.match(value):
                raise self.fail("field", f"{value!r} is not a field name (letters, digits and '_')")
            return value
        if value is not None:
            raise self.fail("field", f"the {signal} signal takes no field")
        return None

    def where(self) -> str | None:
        where = self.text("where")
        if where is None:
            return None
        try:
            check_sql(f"SELECT 1 FROM logs WHERE ({where})", self.schema)
        except QueryRefused as err:
            raise self.fail("where", f"{err} (a SQL condition over the logs view is expected)") from None
        return where

    def checked_sql(self, sql: str | None) -> str | None:
        if sql is None:
            return None
        try:
            check_sql(sql, self.schema)
        except QueryRefused as err:
            raise self.fail("sql", str(err)) from None
        return sql

    def threshold(self, key: str) -> Threshold | None:
        value = self.data.get(key)
        if value is None:
            return None
        match = _THRESHOLD.match(value) if isinstance(value, str) else None
        if match is None:
            raise self.fail(key, f"expected a comparison such as '> 0.05' or '< 1', got {value!r}")
        return Threshold(match.group(1), float(match.group(2)))

    def thresholds(self, signal: str) -> tuple[Threshold | None, Threshold | None, Threshold | None]:
        warning, critical, resolve = (self.threshold(k) for k in ("warning", "critical", "resolve"))
        if signal in PRESENCE_SIGNALS and warning is None and critical is None:
            critical = Threshold(">", 0.0)  # a new or regressed issue reads 1: it is the event itself
        if warning is None and critical is None:
            raise self.fail("critical", "a rule needs 'critical' or 'warning' (or both)")
        if warning is not None and critical is not None:
            if warning.upward != critical.upward:
                raise self.fail(
                    "warning", f"'{warning}' and critical '{critical}' point in opposite directions"
                )
            if (critical.value < warning.value) if critical.upward else (critical.value > warning.value):
                raise self.fail("warning", f"'{warning}' is beyond critical '{critical}'")
        firing = warning or critical
        assert firing is not None
        if resolve is not None:
            if resolve.upward == firing.upward:
                raise self.fail("resolve", f"'{resolve}' must point away from the firing thresholds")
            if _overlap(firing, resolve):
                raise self.fail(
                    "resolve", f"'{resolve}' overlaps '{firing}'; a value cannot fire and resolve"
                )
        return warning, critical, resolve

    def active(self) -> Active | None:
        value = self.data.get("active")
        if value is None:
            return None
        if not isinstance(value, Mapping) or set(value) - {"schedule", "timezone"}:
            raise self.fail("active", "expected { schedule = '<crontab>', timezone = '<zone>' }")
        text, zone = value.get("schedule"), value.get("timezone", "UTC")
        if not isinstance(text, str) or not isinstance(zone, str):
            raise self.fail("active", "schedule and timezone must be text")
        try:
            schedule = parse_schedule(text, zone)
        except ScheduleError as err:
            raise self.fail("active", err.problem) from None
        if schedule.is_interval:
            raise self.fail("active", "expected a crontab (the minutes when the signal is expected)")
        return Active(schedule, text, zone)

    def labels(self, group_by: tuple[str, ...]) -> dict[str, str]:
        value = self.data.get("labels", {})
        if not isinstance(value, Mapping):
            raise self.fail("labels", "expected a table of text labels")
        for key, item in value.items():
            if not _IDENTIFIER.match(key) or not isinstance(item, str):
                raise self.fail("labels", f"{key!r}: expected a name of letters/digits/_ with a text value")
            if key in group_by or key == "rule":
                raise self.fail("labels", f"{key!r} is also a group_by field or 'rule'")
        return dict(value)

    def notification_groups(
        self, group_by: tuple[str, ...], labels: Mapping[str, str]
    ) -> tuple[str, ...] | None:
        if "group_notifications_by" not in self.data:
            return None
        names = self.identifiers("group_notifications_by")
        for name in names:
            if name not in group_by and name not in labels:
                raise self.fail("group_notifications_by", f"{name!r} is neither a group_by field nor a label")
        return names

    def inhibits(self) -> Inhibits | None:
        value = self.data.get("inhibits")
        if value is None:
            return None
        if not isinstance(value, Mapping) or set(value) - {"matchers", "equal"}:
            raise self.fail(
                "inhibits", "expected { matchers = ['name=value', 'name=~regex'], equal = [labels] }"
            )
        texts = value.get("matchers")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise self.fail(
                "inhibits", "matchers: expected a non-empty list such as ['rule=high-error-rate']"
            )
        try:
            matchers = tuple(parse_matcher_text(text) for text in texts)
        except SilenceError as err:
            raise self.fail("inhibits", str(err)) from None
        equal = value.get("equal", [])
        if not isinstance(equal, list) or not all(isinstance(e, str) and _IDENTIFIER.match(e) for e in equal):
            raise self.fail("inhibits", "equal: expected a list of label names")
        return Inhibits(matchers, tuple(equal))


def _overlap(firing: Threshold, resolve: Threshold) -> bool:
    """Whether some value matches both (they point in opposite directions)."""
    if firing.upward:  # firing: > a (or >= a); resolve: < b (or <= b)
        if resolve.value != firing.value:
            return resolve.value > firing.value
    elif resolve.value != firing.value:
        return resolve.value < firing.value
    return firing.op.endswith("=") and resolve.op.endswith("=")
