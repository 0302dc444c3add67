"""Signals from the event store: one checked SELECT per rule over its window.

``EventQuerySource`` is the only place a rule becomes SQL. It builds one statement per rule (group
columns, ``value`` and ``events``), runs it through ``opswatch.server.query.run_query``, the path
``/api/0/query`` uses, so the same checks, row cap and time limit apply and any engine behind
``server/store/base.py`` can answer it. The window is ``[start, end)`` on the event ``timestamp``.

The seam for rollups: the evaluator asks a ``SignalSource`` for observations. A rollup source (per-minute
counts, sums and quantile sketches kept at ingest) will answer the common signals itself and hand the
rest (SQL rules, ``where`` clauses it cannot express, ``distinct``) to this one.
"""

from __future__ import annotations

import datetime
import math
import threading
from typing import Any, Final, Protocol

import sqlglot
from sqlglot import exp

from .. import limits
from ..query import DIALECT, check_sql, run_query
from ..store.base import QueryResult, SchemaInfo
from ..store.layout import literal, quote, snake_case
from .model import ERROR_LEVELS, Observation, Rule

_PERCENTILES: Final = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_AGGREGATES: Final = {"sum": "SUM", "avg": "AVG", "max": "MAX", "min": "MIN"}


class Store(Protocol):
    """What a source needs from the event store (``EventStore`` has it)."""

    def describe(self) -> SchemaInfo: ...

    def query(self, sql: str, *, max_rows: int, timeout: float, max_bytes: int = ...) -> QueryResult: ...


class SignalSource(Protocol):
    """Observations of one rule over ``[start, end)``; raises ``QueryError`` (an evaluation error)."""

    def observe(self, rule: Rule, start: float, end: float) -> list[Observation]: ...


class SignalError(Exception):
    """The rule's query answered something a rule cannot use; the message is for the rule's author."""


class UnseenFields(Exception):
    """The rule names fields the store has never seen (a fresh server, or a misspelling): no data yet.

    ``observations`` is what the rule reads meanwhile: a count, rate or distinct count without
    ``group_by`` is truly 0 (no stored event has the field), anything else has no data.
    """

    def __init__(self, fields: tuple[str, ...], observations: list[Observation]) -> None:
        super().__init__(f"waiting for the field(s) {', '.join(fields)} (not seen in any event yet)")
        self.fields = fields
        self.observations = observations


#: Stand-in window bounds: a rule's statement is checked once with these, then each evaluation puts its
#: own bounds where they stand (only the time literals change between evaluations).
_START_MARK: Final = 0.001
_END_MARK: Final = 0.002


class EventQuerySource:
    """Computes every signal with SQL over the store's ``logs`` view.

    Checking a statement (parse, check, rewrite, regenerate) costs more than DuckDB needs to answer it,
    and only the window's two time literals change from one evaluation to the next: so each rule's
    statement is checked once per store schema, with stand-in bounds, and run with the real ones through
    the store's ``query`` (its row cap and time limit). Should the stand-ins not survive the rewrite
    one for one, the rule goes through ``run_query`` every time instead.

    Rules whose checked statements are the same text over the same window (a warning and a critical
    rule on one query, say) share one run while the store has not written since (its ``data_version``,
    as ``RollupSource`` reads a window once): the same statement over the same rows answers the same.
    A statement that could answer differently on the same rows is always run on its own: one that
    calls a function sqlglot does not know or one that reads a clock or a random source, and one that
    reads ``spans`` (whose writes the version does not count). Answers are kept for the newest window
    end seen (a round's) and dropped when a newer one comes or the store writes; a failed run is not
    kept, so each rule sharing it runs again and fails on its own.
    """

    def __init__(self, store: Store, *, timeout: float = limits.RULES_QUERY_TIMEOUT_SECONDS) -> None:
        self.store = store
        self.timeout = timeout
        #: rule name -> (the rule, the schema it was checked against, its template or None, whether
        #: rules with the same statement and window may share its answer)
        self._checked: dict[str, tuple[Rule, SchemaInfo, str | None, bool]] = {}
        self._unseen: dict[str, tuple[Rule, SchemaInfo, tuple[str, ...]]] = {}
        #: statement with its bounds -> its answer, all read at ``_shared_at`` (data version, newest end)
        self._shared: dict[str, QueryResult] = {}
        self._shared_at: tuple[Any, float] | None = None
        self._lock = threading.Lock()

    def observe(self, rule: Rule, start: float, end: float) -> list[Observation]:
        """Run the rule's statement; ``QueryError`` or ``SignalError`` when it cannot be used,
        ``UnseenFields`` when it names fields no stored event has had."""
        schema = self.store.describe()
        cached = self._unseen.get(rule.name)
        if cached is None or cached[0] is not rule or cached[1] is not schema:
            cached = (rule, schema, unseen_fields(rule, schema))
            self._unseen[rule.name] = cached
        unseen = cached[2]
        if unseen:
            zero = rule.signal in ("count", "rate", "distinct") and not rule.group_by
            raise UnseenFields(unseen, [Observation({}, 0.0, 0)] if zero else [])
        template, shareable = self._template(rule)
        if template is None:
            sql = rule_sql(rule, start, end)
            result = run_query(self.store, sql, max_rows=limits.RULES_MAX_INSTANCES, timeout=self.timeout)
        else:
            sql = template.replace(_literal(_START_MARK), _literal(start)).replace(
                _literal(_END_MARK), _literal(end)
            )
            version = getattr(self.store, "data_version", None) if shareable else None
            result = self._run(sql, end, version)
        if result.truncated:
            raise SignalError(
                f"the rule has more than {limits.RULES_MAX_INSTANCES} instances (the limit); "
                "group by fewer or coarser fields"
            )
        return observations(result)

    def _run(self, sql: str, end: float, version: Any) -> QueryResult:
        """``sql`` through the store's ``query``, or the answer of the same statement already run at
        the store's ``version`` (None: not shared; see the class docstring)."""
        if version is None:
            return self.store.query(sql, max_rows=limits.RULES_MAX_INSTANCES, timeout=self.timeout)
        with self._lock:
            at = self._shared_at
            if at is None or at[0] != version or at[1] < end:  # the store wrote, or a new round began
                self._shared.clear()
                self._shared_at = at = (version, end)
            found = self._shared.get(sql)
        if found is not None:
            return found
        found = self.store.query(sql, max_rows=limits.RULES_MAX_INSTANCES, timeout=self.timeout)
        with self._lock:
            if self._shared_at == at:  # not if the store wrote meanwhile (its answer may predate that)
                self._shared[sql] = found
        return found

    def _template(self, rule: Rule) -> tuple[str | None, bool]:
        """The rule's checked statement with stand-in bounds (``QueryRefused`` if it is refused), and
        whether its answer may be shared (see the class docstring)."""
        schema = self.store.describe()
        cached = self._checked.get(rule.name)
        if cached is not None and cached[0] is rule and cached[1] is schema:
            return cached[2], cached[3]
        raw = rule_sql(rule, _START_MARK, _END_MARK)
        checked = check_sql(raw, schema, max_rows=limits.RULES_MAX_INSTANCES).sql
        marks = [(raw.count(_literal(m)), checked.count(_literal(m))) for m in (_START_MARK, _END_MARK)]
        template = checked if all(a == b > 0 for a, b in marks) else None
        shareable = template is not None and _repeatable(template)
        self._checked[rule.name] = (rule, schema, template, shareable)
        return template, shareable


def unseen_fields(rule: Rule, schema: SchemaInfo) -> tuple[str, ...]:
    """The fields a threshold rule names (``field``, ``group_by``, columns in ``where``) that are not
    columns of the store's view, in either spelling. SQL rules are not looked into."""
    if rule.sql is not None:
        return ()
    known = {name.lower() for name in schema.columns}
    names = [*rule.group_by, *([rule.field] if rule.field else [])]
    if rule.where:
        condition = sqlglot.parse_one(f"SELECT 1 FROM logs WHERE ({rule.where})", read=DIALECT)
        defined = {alias.alias.lower() for alias in condition.find_all(exp.Alias)}
        names += [c.name for c in condition.find_all(exp.Column) if c.name and c.name.lower() not in defined]
    missing = [n for n in names if n.lower() not in known and snake_case(n) not in known]
    return tuple(dict.fromkeys(missing))


def rule_sql(rule: Rule, start: float, end: float) -> str:
    """The statement that computes ``rule`` over ``[start, end)``."""
    window = f"{quote('timestamp')} >= {_timestamp(start)} AND {quote('timestamp')} < {_timestamp(end)}"
    if rule.sql is not None:
        return _windowed(rule.sql, window)
    groups = [quote(name) for name in rule.group_by]
    columns = [*groups, f"{value_expression(rule)} AS value", "COUNT(*) AS events"]
    where = window + (f" AND ({rule.where})" if rule.where else "")
    sql = f"SELECT {', '.join(columns)} FROM logs WHERE {where}"
    if groups:
        sql += f" GROUP BY {', '.join(groups)}"
    return sql


def value_expression(rule: Rule) -> str:
    """The SQL of the rule's value over the filtered window."""
    signal = rule.signal
    if signal == "count":
        return "COUNT(*)"
    if signal == "rate":
        return f"COUNT(*) / {rule.window / 60.0!r}"
    if signal == "error_ratio":
        levels = ", ".join(literal(level) for level in ERROR_LEVELS)
        return f"AVG(CASE WHEN {quote('level')} IN ({levels}) THEN 1.0 ELSE 0.0 END)"
    assert rule.field is not None
    number = f"TRY_CAST({quote(rule.field)} AS DOUBLE)"
    if signal == "distinct":
        return f"COUNT(DISTINCT {quote(rule.field)})"
    if signal in _PERCENTILES:
        return f"QUANTILE_CONT({number}, {_PERCENTILES[signal]})"
    return f"{_AGGREGATES[signal]}({number})"


def observations(result: QueryResult) -> list[Observation]:
    """Rows -> observations: ``value``, optional ``events``, every other column a group label."""
    names = [name.lower() for name in result.columns]
    if "value" not in names:
        raise SignalError(f"the query returns no 'value' column (it returns {', '.join(result.columns)})")
    value_at = names.index("value")
    events_at = names.index("events") if "events" in names else None
    group_at = [i for i in range(len(names)) if i not in (value_at, events_at)]
    found: list[Observation] = []
    for row in result.rows:
        group = {result.columns[i]: _label(row[i]) for i in group_at}
        events = row[events_at] if events_at is not None else None
        found.append(Observation(group, _number(row[value_at]), int(events) if events is not None else None))
    return found


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SignalError(f"'value' must be a number, got {type(value).__name__} {value!r}") from None
    return number if math.isfinite(number) else None


def _label(value: Any) -> str:
    return "" if value is None else str(value)


#: Prefixes of sqlglot's names for functions that read a clock or a random source (``CurrentTimestamp``,
#: ``Localtimestamp``, ``Rand``, ``Uuid`` ...).
_VOLATILE: Final = ("Current", "Local", "Rand", "Uuid")


def _repeatable(sql: str) -> bool:
    """Whether ``sql`` (checked, DuckDB's dialect) answers the same on the same ``logs``/``events`` rows:
    it reads no other table (``spans``), calls only functions sqlglot knows, none of them volatile."""
    tree = sqlglot.parse_one(sql, read=DIALECT)
    named = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)} - {"spans"}
    for table in tree.find_all(exp.Table):
        if table.name.lower() not in {"logs", "events", *named}:
            return False
    for call in tree.find_all(exp.Func):
        if isinstance(call, exp.Anonymous) or type(call).__name__.startswith(_VOLATILE):
            return False
    return True


def _literal(epoch: float) -> str:
    """``'2026-12-03 12:00:00.000'``: the quoted text of a window bound."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC).replace(tzinfo=None)
    return f"'{moment.isoformat(sep=' ', timespec='milliseconds')}'"


def _timestamp(epoch: float) -> str:
    return f"TIMESTAMP {_literal(epoch)}"


def _windowed(sql: str, window: str) -> str:
    """``sql`` with ``logs`` and ``events`` standing for the window's events only (a CTE in front)."""
    tree = sqlglot.parse_one(sql, read=DIALECT)
    ctes = [
        exp.CTE(
            this=sqlglot.parse_one(f"SELECT * FROM {view} WHERE {window}", read=DIALECT),
            alias=exp.TableAlias(this=exp.to_identifier(view)),
        )
        for view in ("logs", "events")
    ]
    existing = tree.args.get("with_")
    if isinstance(existing, exp.With):
        existing.set("expressions", [*ctes, *existing.expressions])
    else:
        tree.set("with_", exp.With(expressions=ctes))
    return str(tree.sql(dialect=DIALECT))
