"""Held-back notice messages sent when their silence or inhibition ends while the alert still fires.

The notice rules (``issue-new``, ``issue-regressed``, ``cron-failing``) are delivered by their
subsystems' outboxes, and ``outbox_rules.OutboxGate`` mutes a message while a silence matches it or a
firing rule inhibits it. As in Alertmanager, a muted alert that still fires when nothing mutes it any
more is announced then, once: ``release`` (called with the rule clock's follow-ups, at most every 15 s)
looks at the muted decisions in the notification log (rows ``silenced`` or ``inhibited`` whose ``reason``
names the outbox row, ``issue_notices#17`` or ``monitor_changes#5``) and, when nothing mutes their rule
and labels now and the alert still fires, marks them ``released`` and hands the outbox row back to its
outbox (``notified_at`` cleared) in one transaction. The outbox then sends its own message, asking the
gate again (a new silence mutes it again, and is logged again), and the gate logs it ``sent``.

The same step sends a message the gate ``deferred`` because its rule has a ``for``: once ``for`` has
passed since the change (a new issue, a regression, a failure) and its alert still fires; the gate then
asks the silences and inhibition as for any message.

"Still fires" (what an Alertmanager user expects of each alert):

* ``cron-failing``: the monitor is still failing in the same episode (``failing_since`` unchanged) and
  is not paused. A monitor that recovered, or failed again in a new episode (announced on its own),
  does not bring back the old message; the recovery of a failure never announced is not sent either
  (``OutboxGate`` logs it ``unannounced``).
* ``issue-new``: the issue is still open (unresolved or regressed) and was created within the rule's
  ``window`` before now: the time its alert fires on the Alerts page (one hour for the default; a rules
  file that replaces the rule with a longer window keeps held-back messages releasable longer).
* ``issue-regressed``: the same, for the regression (the issue still open, not regressed again since,
  and the regression within the rule's window).

The status update is conditional (``WHERE status IN ('silenced', 'inhibited', 'deferred')``), so two
servers, or one server after a restart, never release a message twice; the outbox's own claim then
sends it once. A held-back decision whose alert stopped firing stays as it was in the log and is never
sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Engine, Table, and_, or_, select, update

from ..state.issues import OPEN_STATUSES, Issue
from ..state.monitors import CHANGES, Monitor
from ..state.notices import ISSUE_NOTICES
from ..state.rules import NOTIFICATIONS
from . import inhibit
from .model import Rule
from .silences import Silence, muting

#: Muted decisions looked at per follow-up (newest first).
BATCH: Final = 500
#: How far back a held-back ``cron-failing`` message may still be released (a monitor failing for
#: longer than this with a silence that long stays quiet when the silence ends).
MONITOR_HORIZON: Final = 31 * 86_400.0
MUTED: Final = ("silenced", "inhibited")
#: Decisions that kept a message back for now: muted, or ``deferred`` (the rule's ``for`` had not passed).
HELD: Final = (*MUTED, "deferred")
#: The outbox tables a ``reason`` may name.
TABLES: Final[Mapping[str, Table]] = {"issue_notices": ISSUE_NOTICES, "monitor_changes": CHANGES}


def parse_ref(reason: str | None) -> tuple[str, int] | None:
    """``(table, id)`` of a reference to an outbox row (``issue_notices#17``: the ``notice`` fact the
    outboxes give the gate), or None for any other reason."""
    table, _, number = (reason or "").partition("#")
    if table not in TABLES or not number.isdigit():
        return None
    return table, int(number)


def _horizon(rule: Rule) -> float:
    """How long after a muted decision its alert may still fire."""
    if rule.signal == "monitor_failing":
        return MONITOR_HORIZON
    return float(rule.window)


def release(
    engine: Engine,
    rules: Mapping[str, Rule],
    silences: list[Silence],
    sources: list[inhibit.Source],
    now: float,
) -> int:
    """Hand back to their outboxes the muted notice messages that nothing mutes any more and whose alert
    still fires (see the module docstring); how many were released."""
    notice_rules = {name: rule for name, rule in rules.items() if rule.outbox}
    if not notice_rules:
        return 0
    recent = [
        and_(NOTIFICATIONS.c.rule == name, NOTIFICATIONS.c.at >= now - _horizon(rule))
        for name, rule in notice_rules.items()
    ]
    query = (
        select(
            NOTIFICATIONS.c.rule,
            NOTIFICATIONS.c.key_hash,
            NOTIFICATIONS.c.labels,
            NOTIFICATIONS.c.reason,
            NOTIFICATIONS.c.status,
        )
        .where(
            and_(
                NOTIFICATIONS.c.status.in_(HELD),
                NOTIFICATIONS.c.rule.in_(list(notice_rules)),
                or_(*recent),
            )
        )
        .order_by(NOTIFICATIONS.c.id.desc())
        .limit(BATCH)
    )
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    released = 0
    seen: set[tuple[str, str]] = set()
    for row in rows:
        ref = parse_ref(row.reason)
        if ref is None or (row.rule, row.reason) in seen:
            continue
        seen.add((row.rule, row.reason))
        rule = notice_rules[row.rule]
        labels = {str(k): str(v) for k, v in dict(row.labels or {}).items()}
        deferred = row.status == "deferred"  # the gate asks the silences again when it is sent
        if not deferred and muting(silences, {"rule": row.rule, **labels}) is not None:
            continue
        if not deferred and inhibit.inhibited(sources, row.rule, labels) is not None:
            continue
        mine = and_(
            NOTIFICATIONS.c.rule == row.rule,
            NOTIFICATIONS.c.key_hash == row.key_hash,
            NOTIFICATIONS.c.reason == row.reason,
        )
        with engine.begin() as conn:
            wait = rule.for_ if deferred else 0.0
            if _sent_since(conn, mine) or not _still_fires(conn, rule, ref, now, wait):
                continue
            muted = and_(mine, NOTIFICATIONS.c.status.in_(HELD))
            claimed = conn.execute(update(NOTIFICATIONS).where(muted).values(status="released")).rowcount
            if not claimed:
                continue  # another server released it
            _reopen(conn, *ref)
        released += 1
    return released


def _sent_since(conn: Connection, mine: ColumnElement[bool]) -> bool:
    """Whether the last decision about the message is not a muted one (its outbox sent it after all: a
    claim that failed after the gate had answered was tried again)."""
    last = conn.execute(
        select(NOTIFICATIONS.c.status).where(mine).order_by(NOTIFICATIONS.c.id.desc()).limit(1)
    ).first()
    return last is not None and last.status not in HELD


def _reopen(conn: Connection, table_name: str, row_id: int) -> None:
    """Hand an outbox row back to its outbox: waiting again, unclaimed."""
    table = TABLES[table_name]
    values: dict[str, Any] = {"notified_at": None}
    if "claimed_at" in table.c:
        values["claimed_at"] = None
    conn.execute(update(table).where(table.c.id == row_id).values(values))


def _still_fires(conn: Connection, rule: Rule, ref: tuple[str, int], now: float, wait: float) -> bool:
    """Whether the alert of the outbox row still fires, ``wait`` seconds or more after the row's change."""
    table_name, row_id = ref
    if table_name == "monitor_changes":
        return _monitor_still_failing(conn, row_id, now - wait)
    return _issue_still_new(conn, rule, row_id, now, wait)


def _monitor_still_failing(conn: Connection, change_id: int, latest: float) -> bool:
    columns = CHANGES.c
    change = conn.execute(
        select(columns.monitor_id, columns.notify, columns.details, columns.at).where(columns.id == change_id)
    ).first()
    if change is None or change.notify != "failing" or float(change.at) > latest:
        return False  # a recovery message is never brought back on its own
    monitors = Monitor.__table__.c
    monitor = conn.execute(
        select(monitors.failing_since, monitors.paused).where(monitors.id == change.monitor_id)
    ).first()
    if monitor is None or monitor.paused or monitor.failing_since is None:
        return False
    return bool(monitor.failing_since == dict(change.details or {}).get("since"))


def _issue_still_new(conn: Connection, rule: Rule, notice_id: int, now: float, wait: float) -> bool:
    columns = ISSUE_NOTICES.c
    notice = conn.execute(
        select(columns.issue_id, columns.kind, columns.created_at, columns.change).where(
            columns.id == notice_id
        )
    ).first()
    if notice is None or now >= float(notice.created_at) + _horizon(rule):
        return False
    if now < float(notice.created_at) + wait:
        return False
    issues = Issue.__table__.c
    issue = conn.execute(
        select(issues.status, issues.times_regressed).where(issues.id == notice.issue_id)
    ).first()
    if issue is None or issue.status not in OPEN_STATUSES:
        return False
    if notice.kind == "regressed":
        return bool(int(issue.times_regressed) == int(dict(notice.change or {}).get("times_regressed", -1)))
    return True
