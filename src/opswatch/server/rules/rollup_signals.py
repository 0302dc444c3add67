"""Signals from the per-minute rollups (``store/rollups.py``): the common rules without a raw scan.

``RollupSource`` answers ``count``, ``rate``, ``error_ratio``, ``sum``/``avg``/``max``/``min`` and
``p50``/``p95``/``p99`` of ``duration_ms``, split by ``group_by`` over the rollup's dimensions
(``project_id``, ``service``, ``operation``, ``level``, ``kind``, ``environment``) and filtered by a
``where`` it can express over them: comparisons (``=``, ``!=``, ``IN``, ``LIKE``, ``ILIKE``,
``IS [NOT] NULL``) of a dimension with literals, joined by ``AND``/``OR``/``NOT``. The condition is
parsed with sqlglot, checked node by node against that list, and regenerated from the tree with the
dimensions' own names, so nothing else reaches the store. Every other rule (SQL rules, ``distinct``,
other fields, other conditions), and every rule on a store that keeps no rollup, goes to
``EventQuerySource`` unchanged.

One read per window, not per rule: the first rule of a round that reads a window ``[start, end)``
reads it split by every dimension (``window_rows``), and every rule over the same window is answered
from those rows in Python (its ``where`` compiled by ``rollup_filter``, its groups summed, sketches
merged; rules with the same window, ``group_by`` and ``where`` share that work). Rules of a round
share ``end``, and windows come in a few lengths, so a round of hundreds of rules costs a handful of
queries. The rows are read again when the store has written since (its
``data_version``), and a window with more than ``ROLLUP_MAX_COMBINATIONS`` rows, or a condition
Python cannot evaluate exactly, is read with the rule's own statement instead.

Partial minutes: a window ``[start, end)`` rarely starts on a minute (it ends ``ingest_delay`` before
the evaluation). The store reads its whole minutes from the rollup and the partial minutes at both
edges from raw events, in one statement, so the answers equal ``EventQuerySource``'s on the same data:
exactly for counts, ratios, sums, minimum and maximum (up to float summation order), and within the
sketch's relative error (``store.sketch.RELATIVE_ERROR``) for the percentiles.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Final, Protocol

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from .. import limits
from ..query import DIALECT
from ..store import sketch
from ..store.base import QueryResult, SchemaInfo
from ..store.layout import camel_case, snake_case
from ..store.rollups import DIMENSIONS, RollupAnswer, RollupGroup, RollupRequest
from .model import Observation, Rule
from .rollup_filter import Condition, compile_condition
from .signals import EventQuerySource, SignalError, SignalSource

_PERCENTILES: Final = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
#: Most rows (distinct dimension values) of a window read whole for the rules in Python; past it, each
#: rule reads its own answer with SQL (``limits.RULES_ROLLUP_MAX_COMBINATIONS``).
ROLLUP_MAX_COMBINATIONS: Final = limits.RULES_ROLLUP_MAX_COMBINATIONS
_DURATION_SIGNALS: Final = frozenset({"sum", "avg", "max", "min", *_PERCENTILES})
#: The spellings a rule may use for a dimension in ``where`` (lower case) -> the dimension.
_NAMES: Final = {
    **{name: name for name in DIMENSIONS},
    **{alias.lower(): name for name in DIMENSIONS if (alias := camel_case(name))},
}
#: Nodes a rollup ``where`` may contain (besides dimension columns and literals, checked on their own).
_ALLOWED: Final = (
    exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.In, exp.Like, exp.ILike, exp.Is,
    exp.Null, exp.Boolean, exp.Literal, exp.Neg, exp.Identifier,
)  # fmt: skip


class RollupStore(Protocol):
    """What the source needs from the event store (``DuckDBStore`` and ``ClickHouseStore`` have it)."""

    def describe(self) -> SchemaInfo: ...

    def query(self, sql: str, *, max_rows: int, timeout: float, max_bytes: int = ...) -> QueryResult: ...

    def read_rollups(
        self, request: RollupRequest, *, max_groups: int, timeout: float
    ) -> RollupAnswer | None: ...


@dataclasses.dataclass(frozen=True)
class RollupPlan:
    """How a rule reads the rollup: its groups, its checked condition, whether it needs the sketch."""

    group_by: tuple[str, ...]
    where: str | None
    sketch: bool
    #: ``where`` as Python (``rollup_filter``), None when it has none or Python cannot evaluate it.
    condition: Condition | None = None

    @property
    def in_python(self) -> bool:
        """True when the rule can be answered from a window's rows in Python."""
        return self.where is None or self.condition is not None


class RollupSource:
    """A ``SignalSource`` reading rollups where it can and ``fallback`` (``EventQuerySource``) elsewhere."""

    def __init__(
        self,
        store: Any,
        *,
        fallback: SignalSource | None = None,
        timeout: float = limits.RULES_QUERY_TIMEOUT_SECONDS,
        max_combinations: int = ROLLUP_MAX_COMBINATIONS,
    ) -> None:
        self.store = store
        self.max_combinations = max_combinations
        #: ``(start, end)`` -> (the store's data version then, the window's rows or None if too many)
        self._windows: dict[tuple[float, float], tuple[Any, list[RollupGroup] | None]] = {}
        self._lock = threading.Lock()
        #: Answers of (window, group_by, where, sketch) from one window's rows: rules that differ only in
        #: signal or thresholds (an error ratio and a p95 per service) share them.
        self._answers: dict[tuple[Any, ...], tuple[list[RollupGroup], RollupAnswer]] = {}
        #: Observations of (such an answer, signal, window): rules that differ only in thresholds share
        #: them (``Observation`` is immutable; each rule gets its own list).
        self._observed: dict[tuple[int, str, float], tuple[RollupAnswer, list[Observation]]] = {}
        self.fallback: SignalSource = fallback or EventQuerySource(store, timeout=timeout)
        self.timeout = timeout
        self._plans: dict[str, tuple[Rule, RollupPlan | None]] = {}
        #: Evaluations answered from the rollup and by the fallback (for the benchmark and tests).
        self.from_rollups = 0
        self.from_events = 0

    def observe(self, rule: Rule, start: float, end: float) -> list[Observation]:
        """The rule's observations over ``[start, end)``, from the rollup when the rule allows it."""
        plan = self.plan(rule)
        reader = getattr(self.store, "read_rollups", None)
        found = None
        if plan is not None and reader is not None:
            rows = self.window_rows(start, end) if plan.in_python else None
            if rows is not None:
                found = self._answer(plan, rows, start, end)
                if not found.truncated:
                    self.from_rollups += 1
                    return self._observations(rule, found)
            else:
                request = RollupRequest(start, end, plan.group_by, plan.where, plan.sketch)
                found = reader(request, max_groups=limits.RULES_MAX_INSTANCES, timeout=self.timeout)
        if found is None:
            self.from_events += 1
            return self.fallback.observe(rule, start, end)
        if found.truncated:
            raise SignalError(
                f"the rule has more than {limits.RULES_MAX_INSTANCES} instances (the limit); "
                "group by fewer or coarser fields"
            )
        self.from_rollups += 1
        return [_observation(rule, group) for group in found.groups]

    def window_rows(self, start: float, end: float) -> list[RollupGroup] | None:
        """The rollup of ``[start, end)`` split by every dimension (read once per window and store
        version); None when the store keeps no rollup or the window has too many rows."""
        version = getattr(self.store, "data_version", None)
        if version is None:
            return None
        with self._lock:
            cached = self._windows.get((start, end))
        if cached is not None and cached[0] == version:
            return cached[1]
        request = RollupRequest(start, end, DIMENSIONS, None, sketch=True)
        found = self.store.read_rollups(request, max_groups=self.max_combinations, timeout=self.timeout)
        rows = None if found is None or found.truncated else found.groups
        with self._lock:  # the rule clock and a preview from the API may read at once
            if any(key[1] != end for key in self._windows):  # a new round: the old windows are done
                self._windows.clear()
                self._answers.clear()
                self._observed.clear()
            self._windows[(start, end)] = (version, rows)
        return rows

    def _answer(self, plan: RollupPlan, rows: list[RollupGroup], start: float, end: float) -> RollupAnswer:
        key = (start, end, plan.group_by, plan.where, plan.sketch)
        with self._lock:
            cached = self._answers.get(key)
        if cached is not None and cached[0] is rows:
            return cached[1]
        found = _answer(plan, rows)
        with self._lock:
            self._answers[key] = (rows, found)
        return found

    def _observations(self, rule: Rule, found: RollupAnswer) -> list[Observation]:
        """``rule``'s observations from a shared answer (see ``_observed``)."""
        key = (id(found), rule.signal, rule.window)
        with self._lock:
            cached = self._observed.get(key)
        if cached is None or cached[0] is not found:
            cached = (found, [_observation(rule, group) for group in found.groups])
            with self._lock:
                self._observed[key] = cached
        return list(cached[1])

    def plan(self, rule: Rule) -> RollupPlan | None:
        """How ``rule`` reads the rollup, or None when it cannot (cached per rule)."""
        cached = self._plans.get(rule.name)
        if cached is None or cached[0] is not rule:
            cached = (rule, rollup_plan(rule))
            self._plans[rule.name] = cached
        return cached[1]


def rollup_plan(rule: Rule) -> RollupPlan | None:
    """``rule``'s reading of the rollup (see the module docstring), or None."""
    if rule.sql is not None:
        return None
    if rule.signal in _DURATION_SIGNALS:
        if rule.field is None or snake_case(rule.field) != "duration_ms":
            return None
    elif rule.signal not in ("count", "rate", "error_ratio"):
        return None
    if any(name not in DIMENSIONS for name in rule.group_by):
        return None
    where = None
    if rule.where:
        where = rollup_condition(rule.where)
        if where is None:
            return None
    condition = compile_condition(where) if where is not None else None
    return RollupPlan(tuple(rule.group_by), where, rule.signal in _PERCENTILES, condition)


def _answer(plan: RollupPlan, rows: list[RollupGroup]) -> RollupAnswer:
    """``plan``'s groups from a window's rows split by every dimension (see the module docstring)."""
    picks = [DIMENSIONS.index(name) for name in plan.group_by]
    condition = plan.condition
    totals: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        if condition is not None and condition(row.group) is not True:
            continue
        key = tuple(row.group[at] for at in picks)
        found = totals.get(key)
        if found is None:
            parts = [row.buckets or {}] if plan.sketch else None
            totals[key] = [row.events, row.errors, row.durations, row.duration_sum, row.duration_min,
                           row.duration_max, parts]  # fmt: skip
            continue
        found[0] += row.events
        found[1] += row.errors
        found[2] += row.durations
        found[3] = _add(found[3], row.duration_sum)
        found[4] = _pick(min, found[4], row.duration_min)
        found[5] = _pick(max, found[5], row.duration_max)
        if plan.sketch:
            found[6].append(row.buckets or {})
    if not totals and not picks:  # an ungrouped aggregate over nothing is one row, as in SQL
        totals[()] = [0, 0, 0, None, None, None, [] if plan.sketch else None]
    if len(totals) > limits.RULES_MAX_INSTANCES:
        return RollupAnswer([], truncated=True)
    return RollupAnswer(
        [
            RollupGroup(key, events, errors, durations, total, low, high, _merged(parts))
            for key, (events, errors, durations, total, low, high, parts) in totals.items()
        ]
    )


def _merged(parts: list[dict[int, int]] | None) -> dict[int, int] | None:
    return None if parts is None else sketch.merge(*parts)


def _add(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else choose(a, b)


def rollup_condition(where: str) -> str | None:
    """``where`` rewritten over the rollup's dimensions, or None when it names anything else."""
    try:
        tree = sqlglot.parse_one(f"SELECT 1 FROM logs WHERE ({where})", read=DIALECT)
    except SqlglotError:
        return None
    found = tree.args.get("where")
    if not isinstance(found, exp.Where) or tree.find(exp.Subquery, exp.Select) is not tree:
        return None
    condition = found.this
    for node in condition.walk():
        if isinstance(node, exp.Column):
            if node.table or node.name.lower() not in _NAMES:
                return None
        elif not isinstance(node, _ALLOWED):
            return None
        if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest")):
            return None
        if isinstance(node, (exp.Like, exp.ILike)) and node.args.get("escape"):
            return None
    rewritten = condition.transform(
        lambda node: (
            exp.column(_NAMES[node.name.lower()], quoted=True) if isinstance(node, exp.Column) else node
        )
    )
    return str(rewritten.sql(dialect=DIALECT))


def _observation(rule: Rule, group: RollupGroup) -> Observation:
    pairs = zip(rule.group_by, group.group, strict=True)
    labels = {name: "" if value is None else str(value) for name, value in pairs}
    return Observation(labels, _value(rule, group), group.events)


def _value(rule: Rule, group: RollupGroup) -> float | None:
    signal = rule.signal
    if signal == "count":
        return float(group.events)
    if signal == "rate":
        return group.events / (rule.window / 60.0)
    if signal == "error_ratio":
        return group.errors / group.events if group.events else None
    if signal in _PERCENTILES:
        estimate = sketch.quantile(group.buckets or {}, _PERCENTILES[signal])
        if estimate is None or group.duration_min is None or group.duration_max is None:
            return estimate
        # the true quantile lies within the window's exact min and max: clamping keeps the sketch's
        # bound and makes the answer exact when every duration is the same (five 200 ms calls: 200)
        return min(max(estimate, group.duration_min), group.duration_max)
    if not group.durations:
        return None
    if signal == "sum":
        return group.duration_sum
    if signal == "avg":
        return None if group.duration_sum is None else group.duration_sum / group.durations
    return group.duration_max if signal == "max" else group.duration_min
