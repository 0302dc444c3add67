"""Issue signals: rules over the issues of the state store, one instance per issue.

``IssueSource`` answers the ``SignalSource`` protocol for the issue signals (``model.ISSUE_SIGNALS``);
``Routed`` sends each rule to the issue source or to the event source (SQL over the store, or rollups),
so the evaluator, ``opswatch rules eval`` and the dashboard's chart need not know which is which.

* ``issue_events``: events counted into the issue within the window (``issue_events``, by event time).
* ``issue_users``: distinct values of the rule's ``field`` (default ``user_id``; ``user`` for Sentry
  events) among the issue's events in the window. The event store has no issue column (issues are
  decided after the append), so the window's error events with a user are read from the store and
  mapped to their issues through ``issue_events``, at most ``limits.RULES_ISSUE_USER_EVENTS`` of them.
* ``issue_new``: 1 for each issue created within the window (its ``created`` activity, server time).
* ``issue_regressed``: 1 for each regression within the window (its ``regressed`` activity); the
  regression's number is a label, so a second regression is a new alert.

``issues = { level, environment, project }`` narrows the issues: at least that level, seen in that
environment (any of its events), of that project. Ignored issues never count. Each instance's labels
are ``issue_id``, ``title`` (cut to 200 characters), ``level`` and ``project``; messages link to the
issue's page (``notify.Dispatcher.link``).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Final

from sqlalchemy import Engine, and_, exists, func, select

from ...record import level_name
from .. import limits
from ..query import run_query
from ..state.issues import Issue, IssueActivity, IssueEvent, IssueTagValue
from ..store.layout import literal, quote
from .model import ERROR_LEVELS, ISSUE_SIGNALS, MONITOR_SIGNALS, Observation, Rule
from .signals import SignalError, SignalSource, Store, UnseenFields, unseen_fields
from .signals import _timestamp as timestamp_sql

#: Record level numbers of ``issues.level``.
LEVELS: Final = {"error": 40, "fatal": 50}
TITLE_CHARS: Final = 200
_CHUNK: Final = 500


def _utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


class IssueSource:
    """The issue signals over a state store (and, for ``issue_users``, the event store)."""

    def __init__(self, engine: Engine, store: Store | None = None) -> None:
        self.engine = engine
        self.store = store

    def observe(self, rule: Rule, start: float, end: float) -> list[Observation]:
        """One observation per issue with a reading in ``[start, end)``; ``SignalError`` for a rule that
        is not an issue rule, or when ``issue_users`` has no event store or reads too many events."""
        extra: Mapping[int, Mapping[str, str]] = {}
        if rule.signal == "issue_users":
            values = self._users(rule, start, end)
        elif rule.signal == "issue_events":
            values = self._events(start, end)
        elif rule.signal == "issue_new":
            values = self._activity("created", start, end)
        elif rule.signal == "issue_regressed":
            values, extra = self._regressions(start, end)
        else:
            raise SignalError(f"{rule.signal!r} is not an issue signal")
        return self._observations(rule, values, extra)

    # -- readings: issue id -> value (and, for regressions, the regression's number) ---------------------

    def _events(self, start: float, end: float) -> dict[int, float]:
        column = IssueEvent.__table__.c
        query = (
            select(column.issue_id, func.count())
            .where(
                column.issue_id.is_not(None), column.timestamp >= _utc(start), column.timestamp < _utc(end)
            )
            .group_by(column.issue_id)
        )
        with self.engine.connect() as conn:
            return {int(issue): float(count) for issue, count in conn.execute(query)}

    def _activity(self, kind: str, start: float, end: float) -> dict[int, float]:
        column = IssueActivity.__table__.c
        query = select(column.issue_id).where(
            column.kind == kind, column.at >= _utc(start), column.at < _utc(end)
        )
        with self.engine.connect() as conn:
            return {int(issue): 1.0 for (issue,) in conn.execute(query)}

    def _regressions(self, start: float, end: float) -> tuple[dict[int, float], dict[int, dict[str, str]]]:
        """Regressions in the window, each numbered: the issue's ``times_regressed`` counted back over
        the regressions since (those after ``end`` too, still inside the ingest delay)."""
        activity = IssueActivity.__table__.c
        issues = Issue.__table__.c
        query = (
            select(activity.issue_id, activity.at, issues.times_regressed)
            .join(Issue.__table__, issues.id == activity.issue_id)
            .where(activity.kind == "regressed", activity.at >= _utc(start))
            .order_by(activity.issue_id, activity.at.desc(), activity.id.desc())
        )
        values: dict[int, float] = {}
        extra: dict[int, dict[str, str]] = {}
        later: dict[int, int] = defaultdict(int)
        with self.engine.connect() as conn:
            for issue, at, times in conn.execute(query):
                number = int(times) - later[issue]
                later[issue] += 1
                if at.timestamp() < end and issue not in values:  # the latest in the window
                    values[int(issue)] = 1.0
                    extra[int(issue)] = {"regression": str(number)}
        return values, extra

    def _users(self, rule: Rule, start: float, end: float) -> dict[int, float]:
        if self.store is None:
            raise SignalError("issue_users needs the event store, and this rule service has none")
        assert rule.field is not None
        unseen = unseen_fields(rule, self.store.describe())
        if unseen:
            raise UnseenFields(unseen, [])
        cap = limits.RULES_ISSUE_USER_EVENTS
        stamp = quote("timestamp")
        levels = ", ".join(literal(level) for level in ERROR_LEVELS)
        sql = (
            f"SELECT project_id, event_id, CAST({quote(rule.field)} AS VARCHAR) AS who FROM logs "
            f"WHERE {stamp} >= {timestamp_sql(start)} AND {stamp} < {timestamp_sql(end)} "
            f"AND level IN ({levels}) AND {quote(rule.field)} IS NOT NULL"
        )
        result = run_query(self.store, sql, max_rows=cap, timeout=limits.RULES_QUERY_TIMEOUT_SECONDS)
        if result.truncated:
            raise SignalError(f"more than {cap} error events with a user in the window (the limit)")
        users: dict[tuple[int, str], str] = {
            (int(project), str(event)): str(who) for project, event, who in result.rows if event is not None
        }
        issue_of = self._issues_of(users)
        seen: dict[int, set[str]] = defaultdict(set)
        for key, who in users.items():
            issue = issue_of.get(key)
            if issue is not None:
                seen[issue].add(who)
        return {issue: float(len(people)) for issue, people in seen.items()}

    def _issues_of(self, events: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
        by_project: dict[int, list[str]] = defaultdict(list)
        for project, event in events:
            by_project[project].append(event)
        column = IssueEvent.__table__.c
        found: dict[tuple[int, str], int] = {}
        with self.engine.connect() as conn:
            for project, ids in by_project.items():
                for at in range(0, len(ids), _CHUNK):
                    query = select(column.event_id, column.issue_id).where(
                        column.project_id == project,
                        column.event_id.in_(ids[at : at + _CHUNK]),
                        column.issue_id.is_not(None),
                    )
                    found.update({(project, str(e)): int(i) for e, i in conn.execute(query)})
        return found

    # -- from readings to observations ---------------------------------------------------------------------

    def _observations(
        self, rule: Rule, values: Mapping[int, float], extra: Mapping[int, Mapping[str, str]]
    ) -> list[Observation]:
        """The issues of ``values`` that pass the rule's filter, largest value first, at most
        ``limits.RULES_MAX_INSTANCES``."""
        if not values:
            return []
        ranked = sorted(values, key=lambda issue: (-values[issue], issue))
        rows: list[Any] = []
        with self.engine.connect() as conn:
            for at in range(0, len(ranked), _CHUNK):
                query = self._filtered(rule, ranked[at : at + _CHUNK])
                rows.extend(conn.execute(query))
        rows.sort(key=lambda row: (-values[row.id], row.id))
        found = []
        for row in rows[: limits.RULES_MAX_INSTANCES]:
            value = values[row.id]
            group = {
                "issue_id": str(row.id),
                "title": row.title[:TITLE_CHARS],
                "level": level_name(row.level),
                "project": str(row.project_id),
                **extra.get(row.id, {}),
            }
            events = int(value) if rule.signal == "issue_events" else None
            found.append(Observation(group, value, events))
        return found

    def _filtered(self, rule: Rule, ids: list[int]) -> Any:
        issues = Issue.__table__.c
        conditions = [issues.id.in_(ids), issues.status != "ignored"]
        chosen = rule.issues
        if chosen is not None:
            if chosen.level is not None:
                conditions.append(issues.level >= LEVELS[chosen.level])
            if chosen.project is not None:
                conditions.append(issues.project_id == chosen.project)
            if chosen.environment is not None:
                tags = IssueTagValue.__table__.c
                conditions.append(
                    exists().where(
                        and_(
                            tags.issue_id == issues.id,
                            tags.key == "environment",
                            tags.value == chosen.environment,
                        )
                    )
                )
        return select(issues.id, issues.title, issues.level, issues.project_id).where(and_(*conditions))


class Routed:
    """A ``SignalSource`` that hands issue rules to ``issues``, monitor rules to ``monitors`` and every
    other rule to ``events``."""

    def __init__(self, events: SignalSource, issues: SignalSource, monitors: SignalSource) -> None:
        self.events = events
        self.issues = issues
        self.monitors = monitors

    def observe(self, rule: Rule, start: float, end: float) -> list[Observation]:
        """The observations of the source that answers ``rule``'s signal."""
        if rule.signal in ISSUE_SIGNALS:
            return self.issues.observe(rule, start, end)
        if rule.signal in MONITOR_SIGNALS:
            return self.monitors.observe(rule, start, end)
        return self.events.observe(rule, start, end)
