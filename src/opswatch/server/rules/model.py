"""What a rule is, once loaded: plain frozen dataclasses, no I/O.

A ``Rule`` is built by ``load`` (from a TOML file, the API or the defaults) and never changes; the
evaluator turns it into observations and the state machine into transitions. Times are seconds.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import operator
from collections.abc import Callable, Mapping
from typing import Final, Literal
from zoneinfo import ZoneInfo

from ...crons.schedule import Schedule
from .inhibit import Inhibits

#: Threshold signals and what each needs: ``field`` (a numeric or any column) or nothing.
SIGNALS: Final = (
    "count", "rate", "error_ratio", "sum", "avg", "max", "min", "p50", "p95", "p99", "distinct", "sql",
    "issue_events", "issue_users", "issue_new", "issue_regressed", "monitor_failing",
)  # fmt: skip
#: Signals computed over a field (``field`` required, except the percentiles, which default to duration).
FIELD_SIGNALS: Final = frozenset({"sum", "avg", "max", "min", "p50", "p95", "p99", "distinct"})
#: Levels whose events count as errors for ``error_ratio``.
ERROR_LEVELS: Final = ("error", "fatal")
#: Signals whose value is the number of events (or of values): a group absent from a window reads 0.
VOLUME_SIGNALS: Final = frozenset({"count", "rate", "distinct"})
#: Issue signals, read from the state store's issues (``issues.IssueSource``): per issue, events in the
#: window, distinct users in the window, new in the window, regressed in the window.
ISSUE_SIGNALS: Final = ("issue_events", "issue_users", "issue_new", "issue_regressed")
#: Cron monitors: 1 for each monitor failing now (``monitor_signals.MonitorSource``).
MONITOR_SIGNALS: Final = ("monitor_failing",)
#: Issue signals that mark a moment rather than a level: they announce, and end without a resolve message.
EVENT_SIGNALS: Final = frozenset({"issue_new", "issue_regressed"})
#: Signals that read 1 for each thing they find: without thresholds, ``critical = "> 0"``.
PRESENCE_SIGNALS: Final = EVENT_SIGNALS | frozenset(MONITOR_SIGNALS)
#: Default rules whose messages the subsystem's own notice outbox sends the moment the change is
#: recorded, with its own message (``outbox_rules``): rule name -> signal. The clock still evaluates
#: them (their alerts show, and can inhibit); silences, inhibition and the rule's filter decide at the
#: outbox whether the message goes out.
OUTBOX_RULES: Final = {
    "issue-new": "issue_new",
    "issue-regressed": "issue_regressed",
    "cron-failing": "monitor_failing",
}
Direction = Literal["above", "below", "both"]
DIRECTIONS: Final = ("above", "below", "both")

Policy = Literal["ok", "alerting", "keep_last"]
POLICIES: Final = ("ok", "alerting", "keep_last")
Severity = Literal["warning", "critical"]

_OPS: Final[Mapping[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A comparison such as ``> 0.05``: ``matches(value)`` says whether a value crosses it."""

    op: str
    value: float

    def matches(self, value: float | None) -> bool:
        """True when ``value`` is a finite number on the threshold's side; never for None or NaN."""
        if value is None or not math.isfinite(value):
            return False
        return _OPS[self.op](value, self.value)

    @property
    def upward(self) -> bool:
        """True for ``>``/``>=`` (fires when the value rises)."""
        return self.op.startswith(">")

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclasses.dataclass(frozen=True)
class Active:
    """When a rule's signal is expected: a crontab in a timezone. Each time the schedule fires, the
    signal is expected from then to the end of that clock hour, so ``0 8-20 * * 0`` means Sundays
    08:00-20:59 and ``* 8-20 * * 0`` the same; ``30 8 * * *`` means 08:30-08:59 every day."""

    schedule: Schedule
    text: str
    timezone: str

    def covers(self, ts: float) -> bool:
        """True when the schedule fired at or before ``ts`` within the same clock hour (in its zone)."""
        last = self.schedule.last_timestamp_at_or_before(ts)
        if last is None or ts - last >= 3600.0:
            return False
        zone = ZoneInfo(self.timezone)
        fired = datetime.datetime.fromtimestamp(last, zone)
        now = datetime.datetime.fromtimestamp(ts, zone)
        return (fired.date(), fired.hour) == (now.date(), now.hour)


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """An anomaly rule's baseline: the same window of the last ``weeks`` weeks (see ``baselines``).

    The rule's value is how far the reading lies from the baseline's median, in robust spreads
    (1.4826 * MAD, never narrower than the floors in ``baselines.spread``), signed by ``direction``:
    ``above`` positive above the median, ``below`` positive below it, ``both`` the distance either way.
    Fewer than ``min_weeks`` weeks with data read as no data (the rule cannot fire yet)."""

    weeks: int = 4
    min_weeks: int = 3
    direction: Direction = "both"


@dataclasses.dataclass(frozen=True)
class IssueFilter:
    """Which issues an issue rule watches: at least ``level`` (``error`` or ``fatal``), seen in
    ``environment``, of ``project`` (None: any)."""

    level: str | None = None
    environment: str | None = None
    project: int | None = None


@dataclasses.dataclass(frozen=True)
class Rule:
    """One alert rule (see the README's "Server alert rules" for each key)."""

    name: str
    signal: str
    window: float
    field: str | None = None
    where: str | None = None
    sql: str | None = None
    group_by: tuple[str, ...] = ()
    warning: Threshold | None = None
    critical: Threshold | None = None
    resolve: Threshold | None = None
    min_events: int = 0
    for_: float = 0.0
    keep_firing_for: float = 0.0
    template: str | None = None
    active: Active | None = None
    channels: tuple[str, ...] = ()
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    no_data: Policy = "ok"
    on_error: Policy = "keep_last"
    #: Instance labels that form one notification group; None: all of them (one group per instance).
    group_notifications_by: tuple[str, ...] | None = None
    #: Whom this rule's firing instances mute (``inhibit.Inhibits``), or None.
    inhibits: Inhibits | None = None
    #: Where the rule came from: ``file``, ``defaults`` or ``api``.
    source: str = "file"
    #: Change rules: seconds back to the window compared with (``compare = "1w"``); the value is the
    #: percent change from then to now.
    compare: float | None = None
    #: Anomaly rules: the seasonal baseline.
    anomaly: Anomaly | None = None
    #: The zone whose calendar ``compare`` and ``anomaly`` shift in (a week earlier is the same wall
    #: clock time, across daylight saving changes).
    timezone: str = "UTC"
    #: Issue rules: which issues count.
    issues: IssueFilter | None = None

    @property
    def outbox(self) -> bool:
        """True for a rule delivered by a notice outbox (``OUTBOX_RULES``), not by the dispatcher."""
        return OUTBOX_RULES.get(self.name) == self.signal

    @property
    def kind(self) -> str:
        """``threshold``, ``sql``, ``change``, ``anomaly``, ``issue`` or ``monitor``."""
        if self.compare is not None:
            return "change"
        if self.anomaly is not None:
            return "anomaly"
        if self.signal in ISSUE_SIGNALS:
            return "issue"
        if self.signal in MONITOR_SIGNALS:
            return "monitor"
        return "sql" if self.signal == "sql" else "threshold"

    def level(self, value: float | None) -> Severity | None:
        """The highest level ``value`` crosses, or None."""
        if self.critical is not None and self.critical.matches(value):
            return "critical"
        if self.warning is not None and self.warning.matches(value):
            return "warning"
        return None

    def threshold_for(self, severity: Severity | None) -> Threshold | None:
        """The threshold of ``severity`` (critical when None)."""
        return self.warning if severity == "warning" else self.critical or self.warning


@dataclasses.dataclass(frozen=True)
class Observation:
    """One instance's reading in one evaluation: its group values, the value, and the events behind it.

    ``value`` is None when the window held nothing to compute it from (an average of no events);
    ``events`` is None when the signal cannot say (a SQL rule without an ``events`` column).
    """

    group: Mapping[str, str]
    value: float | None
    events: int | None = None
    #: What the value was computed from, for messages (a change's two readings, an anomaly's baseline).
    note: str | None = None


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """A rule's result at one time: observations, or an error, or not expected (outside ``active``)."""

    at: float
    window_start: float
    window_end: float
    observations: tuple[Observation, ...] = ()
    error: str | None = None
    expected: bool = True
    #: Fields the rule names that no stored event has had yet (read as no data, not as an error).
    waiting: tuple[str, ...] = ()


def instance_key(group: Mapping[str, str]) -> str:
    """The stable identity of a label set: its group values as canonical JSON."""
    return json.dumps(dict(sorted(group.items())), separators=(",", ":"), ensure_ascii=False)
