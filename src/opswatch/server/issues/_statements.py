"""The statements the ingest path runs, built once per dialect so SQLAlchemy compiles each only once.

Each is executed with many parameter sets at a time (``executemany``); parameter names start with ``b_``
because SQLAlchemy reserves plain column names for the SET clause.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from sqlalchemy import Integer, String, bindparam, case, func, select, update

from ..state.issues import Issue, IssueEvent, IssueHash, IssueHourlyCount, IssueTagValue, UtcDateTime


@dataclasses.dataclass(frozen=True)
class Statements:
    """The prepared statements of one dialect."""

    claim: Any
    latest: Any
    counts: Any
    hours: Any
    tags: Any
    link: Any
    hashes: Any
    states: Any


def _p(name: str, kind: Any) -> Any:
    return bindparam(name, type_=kind)


@functools.cache
def statements(dialect: str) -> Statements:
    """The statements for ``dialect`` (``sqlite`` or ``postgresql``), built on first use."""
    from sqlalchemy.dialects import postgresql, sqlite

    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"the issues tables support SQLite and PostgreSQL, not {dialect}")
    make_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    claim = (
        make_insert(IssueEvent).on_conflict_do_nothing().returning(IssueEvent.project_id, IssueEvent.event_id)
    )
    latest = (
        update(Issue)
        .where(Issue.id == _p("b_id", Integer), Issue.last_seen <= _p("b_last", UtcDateTime()))
        .values(
            latest_event_id=_p("b_event_id", String),
            latest_event=_p("b_event", String),
            last_release=func.coalesce(_p("b_release", String), Issue.last_release),
        )
    )
    first_at, last_at, level = (
        _p("b_first", UtcDateTime()),
        _p("b_last", UtcDateTime()),
        _p("b_level", Integer),
    )
    counts = (
        update(Issue)
        .where(Issue.id == _p("b_id", Integer))
        .values(
            times_seen=Issue.times_seen + _p("b_n", Integer),
            first_seen=case((Issue.first_seen > first_at, first_at), else_=Issue.first_seen),
            last_seen=case((Issue.last_seen < last_at, last_at), else_=Issue.last_seen),
            level=case((Issue.level < level, level), else_=Issue.level),
            operation=func.coalesce(Issue.operation, _p("b_operation", String)),
            first_release=func.coalesce(Issue.first_release, _p("b_first_release", String)),
        )
    )
    hours_insert = make_insert(IssueHourlyCount)
    hours = hours_insert.on_conflict_do_update(
        index_elements=["issue_id", "hour"],
        set_={"count": IssueHourlyCount.count + hours_insert.excluded.count},
    )
    tags_insert = make_insert(IssueTagValue)
    new = tags_insert.excluded
    tags = tags_insert.on_conflict_do_update(
        index_elements=["issue_id", "key", "value"],
        set_={
            "times_seen": IssueTagValue.times_seen + new.times_seen,
            "first_seen": case(
                (IssueTagValue.first_seen > new.first_seen, new.first_seen), else_=IssueTagValue.first_seen
            ),
            "last_seen": case(
                (IssueTagValue.last_seen < new.last_seen, new.last_seen), else_=IssueTagValue.last_seen
            ),
        },
    )
    link = (
        update(IssueEvent)
        .where(
            IssueEvent.project_id == _p("b_project", Integer), IssueEvent.event_id == _p("b_event", String)
        )
        .values(issue_id=_p("b_issue", Integer))
    )
    hashes = select(IssueHash.hash, IssueHash.issue_id).where(
        IssueHash.project_id == _p("b_project", Integer),
        IssueHash.hash.in_(bindparam("b_hashes", expanding=True)),
    )
    states = select(
        Issue.id,
        Issue.status,
        Issue.times_seen,
        Issue.resolved_at,
        Issue.ignore_until,
        Issue.ignore_until_count,
        Issue.title,
        Issue.culprit,
        Issue.level,
    ).where(Issue.id.in_(bindparam("b_ids", expanding=True)))
    return Statements(claim, latest, counts, hours, tags, link, hashes, states)
