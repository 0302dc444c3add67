"""Counting error events into issues: one transaction per batch, safe with concurrent writers.

``record_events(conn, records, now)`` groups the batch by (project, hash), so a burst of one error is one
row update, not one per event, and runs a fixed number of statements per batch whatever its size
(prepared once per dialect and executed with many parameter sets). The steps, in one transaction:

1. Insert ``(project_id, event_id)`` into ``issue_events`` with ``ON CONFLICT DO NOTHING RETURNING``: only
   events not seen before are counted (a retried batch counts nothing twice). Being a write, it also takes
   SQLite's write lock first, so nothing read after it can go stale.
2. Find the issue of each hash (``issue_hashes``; older grouping versions are tried before creating a new
   issue); create it when missing, inside a savepoint so that a concurrent creator wins cleanly.
3. Update counters with arithmetic in SQL (``times_seen = times_seen + n``), never read-modify-write.
4. State changes are conditional UPDATEs (``... WHERE status = 'resolved'``): of two writers that see the
   same regression, exactly one changes the row and reports it, so one regression is one message.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from ...record import ERROR, LEVEL_NUMBERS, new_event_id
from ..state.issues import (
    Issue,
    IssueHash,
)
from . import grouping
from ._sql import insert_for, parse_time
from ._statements import Statements, statements
from .activity import activity

#: Parameter sets per executemany chunk.
CHUNK: Final = 500
#: Record kinds that never become issues even at error level (cron state changes, check-ins, spans), and
#: records the sender called logs: Sentry makes issues from error events, not from log records (with
#: sentry-sdk's logging integration one ``logging.error`` sends both). An opswatch record at error level
#: that names no kind is ``error`` (``ingest.records.normalize``), so it opens an issue as before.
NOT_ISSUES: Final = frozenset({"check_in", "state_change", "transaction", "span", "metric", "session", "log"})
#: An event dated further in the future than this is dated at its arrival (a client clock gone wrong).
MAX_CLOCK_SKEW: Final = datetime.timedelta(minutes=1)
#: Longest tag value kept (releases, environments, operations).
MAX_TAG_VALUE: Final = 200
#: The values remembered per issue, with counts and first/last seen.
TAG_KEYS: Final = ("release", "environment", "operation")


@dataclasses.dataclass(frozen=True)
class IssueChange:
    """Something worth a message: an issue was created (``new``) or came back after resolution
    (``regressed``); ``record`` is the event that caused it."""

    kind: str
    issue_id: int
    project_id: int
    title: str
    culprit: str
    level: int
    times_regressed: int
    record: Mapping[str, Any]


def is_error_record(record: Mapping[str, Any]) -> bool:
    """True for records that belong to an issue: level error or fatal, and not a check-in or the like."""
    level = record.get("level")
    number = LEVEL_NUMBERS.get(level.lower(), 0) if isinstance(level, str) else level
    if not isinstance(number, int) or isinstance(number, bool) or number < ERROR:
        return False
    return record.get("kind") not in NOT_ISSUES


@dataclasses.dataclass
class _Occurrence:
    record: Mapping[str, Any]
    grouping: grouping.Grouping
    project_id: int
    event_id: str
    when: datetime.datetime
    level: int


def _occurrence(record: Mapping[str, Any], now: datetime.datetime) -> _Occurrence:
    when = parse_time(record.get("timestamp")) or now
    if when > now + MAX_CLOCK_SKEW:
        when = now
    level = record.get("level")
    number = LEVEL_NUMBERS.get(level.lower(), ERROR) if isinstance(level, str) else ERROR
    event_id = record.get("event_id")
    try:
        project_id = int(record.get("project_id") or 0)
    except (TypeError, ValueError):
        project_id = 0
    return _Occurrence(
        record=record,
        grouping=grouping.group(record),
        project_id=project_id,
        event_id=event_id if isinstance(event_id, str) and event_id else new_event_id(),
        when=when,
        level=number,
    )


def _tag(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_TAG_VALUE]


@dataclasses.dataclass
class _Group:
    """The new events of one (project, hash) in a batch, summarized."""

    project_id: int
    occurrences: list[_Occurrence]
    issue_id: int = 0
    created: bool = False

    @property
    def first(self) -> _Occurrence:
        return min(self.occurrences, key=lambda o: o.when)

    @property
    def latest(self) -> _Occurrence:
        return max(reversed(self.occurrences), key=lambda o: o.when)  # ties: the last one sent


def _executemany(conn: Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        conn.execute(statement, rows[start : start + CHUNK])


# -- the batch -------------------------------------------------------------------------------------------


def record_events(
    conn: Connection, records: Sequence[Mapping[str, Any]], now: datetime.datetime
) -> list[IssueChange]:
    """Count the error records of a batch into their issues (in the caller's transaction).

    Returns the changes worth a message (new and regressed issues), each reported by exactly one writer.
    Records that are not errors, and events counted before, are skipped.
    """
    occurrences = [_occurrence(r, now) for r in records if is_error_record(r)]
    if not occurrences:
        return []
    sql = statements(conn.dialect.name)
    fresh = _claim_events(conn, sql, occurrences)
    groups: dict[tuple[int, str], _Group] = {}
    for occ in occurrences:
        key = (occ.project_id, occ.event_id)
        if key in fresh:
            fresh.discard(key)  # a repeat inside the batch counts once
            group_key = (occ.project_id, occ.grouping.hash)
            group = groups.get(group_key)
            if group is None:
                groups[group_key] = group = _Group(occ.project_id, [])
            group.occurrences.append(occ)
    if not groups:
        return []
    _resolve_issues(conn, sql, list(groups.values()), now)
    _update_issues(conn, sql, list(groups.values()))
    return _transitions(conn, sql, list(groups.values()), now)


def _claim_events(conn: Connection, sql: Statements, occurrences: list[_Occurrence]) -> set[tuple[int, str]]:
    rows = {
        (occ.project_id, occ.event_id): {
            "project_id": occ.project_id,
            "event_id": occ.event_id,
            "hash": occ.grouping.hash,
            "issue_id": None,
            "timestamp": occ.when,
        }
        for occ in occurrences
    }
    values = [rows[key] for key in sorted(rows)]  # one order for every writer: no lock-order deadlocks
    fresh: set[tuple[int, str]] = set()
    for start in range(0, len(values), CHUNK):
        result = conn.execute(sql.claim, values[start : start + CHUNK])
        fresh.update((int(p), str(e)) for p, e in result)
    return fresh


def _resolve_issues(conn: Connection, sql: Statements, groups: list[_Group], now: datetime.datetime) -> None:
    by_project: dict[int, list[_Group]] = defaultdict(list)
    for group in groups:
        by_project[group.project_id].append(group)
    for project_id, members in sorted(by_project.items()):
        members.sort(key=lambda g: g.occurrences[0].grouping.hash)
        hashes = [g.occurrences[0].grouping.hash for g in members]
        known: dict[str, int] = {}
        for start in range(0, len(hashes), CHUNK):
            rows = conn.execute(
                sql.hashes, {"b_project": project_id, "b_hashes": hashes[start : start + CHUNK]}
            )
            known.update((str(h), int(i)) for h, i in rows)
        for group in members:
            found = known.get(group.occurrences[0].grouping.hash)
            if found is None:
                found = _find_by_previous_versions(conn, project_id, group.first, now)
            if found is None:
                group.issue_id, group.created = _create_issue(conn, project_id, group, now)
            else:
                group.issue_id = found


def _find_by_previous_versions(
    conn: Connection, project_id: int, occ: _Occurrence, now: datetime.datetime
) -> int | None:
    for _version, older in sorted(grouping.PREVIOUS_VERSIONS.items(), reverse=True):
        found = conn.execute(
            select(IssueHash.issue_id).where(
                IssueHash.project_id == project_id, IssueHash.hash == older(occ.record).hash
            )
        ).scalar_one_or_none()
        if found is not None:
            _link_hash(conn, project_id, occ.grouping, int(found), now)
            return int(found)
    return None


def _find_issue(conn: Connection, project_id: int, occ: _Occurrence, now: datetime.datetime) -> int | None:
    found = conn.execute(
        select(IssueHash.issue_id).where(
            IssueHash.project_id == project_id, IssueHash.hash == occ.grouping.hash
        )
    ).scalar_one_or_none()
    return int(found) if found is not None else _find_by_previous_versions(conn, project_id, occ, now)


def _link_hash(
    conn: Connection, project_id: int, group: grouping.Grouping, issue_id: int, now: datetime.datetime
) -> None:
    conn.execute(
        insert_for(conn, IssueHash)
        .values(
            project_id=project_id,
            hash=group.hash,
            issue_id=issue_id,
            grouping_version=group.version,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )


def _create_issue(
    conn: Connection, project_id: int, group: _Group, now: datetime.datetime
) -> tuple[int, bool]:
    """Create the issue of the group's hash; returns (issue id, created). A concurrent creator may win."""
    occ = group.first
    record, found = occ.record, occ.grouping
    savepoint = conn.begin_nested()
    try:
        issue_id = conn.execute(
            insert(Issue)
            .values(
                project_id=project_id,
                status="unresolved",
                level=occ.level,
                title=found.title,
                culprit=found.culprit[:1000],
                error_type=found.error_type[:255] if found.error_type else None,
                logger=_tag(record.get("logger")),
                operation=None,
                grouping_version=found.version,
                grouping=found.metadata(),
                primary_hash=found.hash,
                first_seen=occ.when,
                last_seen=occ.when,
                times_seen=0,
                first_event_id=occ.event_id,
                status_changed_at=now,
                times_regressed=0,
            )
            .returning(Issue.id)
        ).scalar_one()
        conn.execute(
            insert(IssueHash).values(
                project_id=project_id,
                hash=found.hash,
                issue_id=issue_id,
                grouping_version=found.version,
                created_at=now,
            )
        )
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        existing = _find_issue(conn, project_id, occ, now)
        if existing is None:
            raise
        return existing, False
    activity(
        conn, int(issue_id), now, "system:ingest", "created", None, "unresolved", {"event_id": occ.event_id}
    )
    return int(issue_id), True


def _update_issues(conn: Connection, sql: Statements, groups: list[_Group]) -> None:
    latest_rows: list[dict[str, Any]] = []
    count_rows: list[dict[str, Any]] = []
    hour_counts: dict[tuple[int, datetime.datetime], int] = defaultdict(int)
    tags: dict[tuple[int, str, str], list[Any]] = {}
    links: list[dict[str, Any]] = []
    for group in groups:
        occurrences, issue_id = group.occurrences, group.issue_id
        first, latest = group.first, group.latest
        latest_rows.append(
            {
                "b_id": issue_id,
                "b_last": latest.when,
                "b_event_id": latest.event_id,
                "b_event": orjson.dumps(latest.record, default=str).decode(),
                "b_release": _tag(latest.record.get("release")),
            }
        )
        count_rows.append(
            {
                "b_id": issue_id,
                "b_n": len(occurrences),
                "b_first": first.when,
                "b_last": latest.when,
                "b_level": max(o.level for o in occurrences),
                "b_operation": next((t for o in occurrences if (t := _tag(o.record.get("operation")))), None),
                "b_first_release": next(
                    (t for o in occurrences if (t := _tag(o.record.get("release")))), None
                ),
            }
        )
        for occ in occurrences:
            hour_counts[(issue_id, occ.when.replace(minute=0, second=0, microsecond=0))] += 1
            links.append({"b_project": group.project_id, "b_event": occ.event_id, "b_issue": issue_id})
            for key in TAG_KEYS:
                value = _tag(occ.record.get(key))
                if value is None:
                    continue
                entry = tags.get((issue_id, key, value))
                if entry is None:
                    tags[(issue_id, key, value)] = [1, occ.when, occ.when]
                else:
                    entry[0] += 1
                    entry[1] = min(entry[1], occ.when)
                    entry[2] = max(entry[2], occ.when)
    # Rows in issue-id order for every writer (no lock-order deadlocks on PostgreSQL). The latest event
    # first: its WHERE compares with last_seen before the counts move it.
    _executemany(conn, sql.latest, sorted(latest_rows, key=lambda row: row["b_id"]))
    _executemany(conn, sql.counts, sorted(count_rows, key=lambda row: row["b_id"]))
    _executemany(
        conn, sql.hours, [{"issue_id": i, "hour": h, "count": n} for (i, h), n in sorted(hour_counts.items())]
    )
    _executemany(
        conn,
        sql.tags,
        [
            {"issue_id": i, "key": k, "value": v, "times_seen": n, "first_seen": f, "last_seen": la}
            for (i, k, v), (n, f, la) in sorted(tags.items(), key=lambda item: item[0])
        ],
    )
    _executemany(conn, sql.link, sorted(links, key=lambda row: row["b_event"]))


def _transitions(
    conn: Connection, sql: Statements, groups: list[_Group], now: datetime.datetime
) -> list[IssueChange]:
    by_id = {g.issue_id: g for g in groups}
    states: dict[int, Any] = {}
    ids = list(by_id)
    for start in range(0, len(ids), CHUNK):
        for row in conn.execute(sql.states, {"b_ids": ids[start : start + CHUNK]}):
            states[int(row.id)] = row
    changes: list[IssueChange] = []
    for issue_id, group in sorted(by_id.items()):
        row = states[issue_id]
        latest = group.latest

        def change(kind: str, times_regressed: int, row: Any = row, group: _Group = group) -> IssueChange:
            return IssueChange(
                kind=kind,
                issue_id=group.issue_id,
                project_id=group.project_id,
                title=str(row.title),
                culprit=str(row.culprit),
                level=int(row.level),
                times_regressed=times_regressed,
                record=group.latest.record,
            )

        if group.created:
            changes.append(change("new", 0))
        if row.status == "resolved" and (row.resolved_at is None or latest.when > row.resolved_at):
            regressed = conn.execute(
                update(Issue)
                .where(Issue.id == issue_id, Issue.status == "resolved")
                .values(
                    status="regressed",
                    status_changed_at=now,
                    resolved_at=None,
                    times_regressed=Issue.times_regressed + 1,
                )
                .returning(Issue.times_regressed)
            ).scalar_one_or_none()
            if regressed is not None:
                data: dict[str, Any] = {
                    "event_id": latest.event_id,
                    "release": _tag(latest.record.get("release")),
                }
                activity(conn, issue_id, now, "system:ingest", "regressed", "resolved", "regressed", data)
                changes.append(change("regressed", int(regressed)))
        elif row.status == "ignored":
            _maybe_unignore(conn, row, now)
    return changes


def _maybe_unignore(conn: Connection, row: Any, now: datetime.datetime) -> None:
    reason = None
    if row.ignore_until is not None and now >= row.ignore_until:
        reason = "system:ignore-expired"
    elif row.ignore_until_count is not None and row.times_seen >= row.ignore_until_count:
        reason = "system:ignore-count-reached"
    if reason is None:
        return
    done = conn.execute(
        update(Issue)
        .where(Issue.id == row.id, Issue.status == "ignored")
        .values(status="unresolved", status_changed_at=now, ignore_until=None, ignore_until_count=None)
    ).rowcount
    if done:
        counted = {"times_seen": int(row.times_seen)}
        activity(conn, int(row.id), now, reason, "unignored", "ignored", "unresolved", counted)
