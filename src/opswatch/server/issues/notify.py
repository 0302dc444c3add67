"""Messages about issues: one when an issue is new, one each time it regresses, with a link to it.

The messages go through the same delivery code as the app's alerts (``opswatch.alerts``), and through
the server's durable notice outbox (``opswatch.server.outbox``, as cron monitors do): the issue's
transaction also writes an ``issue_notices`` row (``notice_row``), and ``IssueNotices`` claims waiting
rows and hands their ``Alert``s to the notifier, which queues them and returns at once, so the ingest
request that caused them never waits for Slack. A server killed after the issue committed sends the
message after its restart (or another server does, once the dead one's lease ran out). Each alert
carries a fingerprint of its own (``issue-<id>-new``, ``issue-<id>-regressed-<n>``) so that the
notifier's repeat suppression never folds two different issues, or two regressions of one issue, into
one message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...alerts.message import Alert, cut, facts
from ...record import level_name
from .. import limits
from ..outbox import NoticeSender, NoticeTable
from ..state.notices import ISSUE_NOTICES
from .upsert import IssueChange

_log = logging.getLogger("opswatch.server.issues")

#: The notifier's route for issue messages (its repeat suppression is per route and fingerprint).
ROUTE = "issues"

#: Longest error text put in a message (Slack cuts sections at 3,000 characters anyway).
MAX_ERROR_TEXT = 1_000


def issue_url(base_url: str, issue_id: int) -> str:
    """The link to an issue's page on the server's dashboard."""
    return f"{base_url.rstrip('/')}/issues/{issue_id}"


def _error_text(record: Mapping[str, Any]) -> str | None:
    error = record.get("error")
    if isinstance(error, Mapping) and error.get("type"):
        message = error.get("message")
        text = f"{error['type']}: {message}" if message else str(error["type"])
        return cut(text, MAX_ERROR_TEXT)
    message = record.get("message")
    return cut(str(message), MAX_ERROR_TEXT) if message else None


def build_alert(change: IssueChange, base_url: str) -> Alert:
    """The message for a new or regressed issue."""
    record = change.record
    level = level_name(change.level)
    new = change.kind == "new"
    title = "New issue" if new else "Regressed issue"
    summary = change.title if new else f"Resolved before, happening again: {change.title}"
    return Alert(
        title=title,
        summary=summary,
        severity="critical" if level == "fatal" else "error",
        facts=facts(
            [
                ("Where", change.culprit),
                ("Level", level),
                ("Operation", record.get("operation")),
                ("Environment", record.get("environment")),
                ("Release", record.get("release")),
                ("Service", record.get("service")),
                ("Regressions", change.times_regressed if not new else None),
            ]
        ),
        error=_error_text(record),
        url=issue_url(base_url, change.issue_id),
        url_label="View issue",
        template="issue_new" if new else "issue_regressed",
        fingerprint=f"issue-{change.issue_id}-new"
        if new
        else f"issue-{change.issue_id}-regressed-{change.times_regressed}",
        context=tuple(
            str(item)
            for item in (f"project {change.project_id}", f"issue {change.issue_id}", record.get("event_id"))
            if item
        ),
        data={
            "kind": f"issue.{change.kind}",
            "issue_id": change.issue_id,
            "project_id": change.project_id,
            "event_id": record.get("event_id"),
            "times_regressed": change.times_regressed,
        },
    )


#: The fields of the causing event a message shows (the rest of the event stays in the event store).
NOTICE_FIELDS = ("event_id", "message", "operation", "environment", "release", "service")


def notice_row(change: IssueChange, now: float) -> dict[str, Any]:
    """The ``issue_notices`` row for ``change``: everything its message needs, as JSON."""
    record = change.record
    kept: dict[str, Any] = {name: record[name] for name in NOTICE_FIELDS if isinstance(record.get(name), str)}
    error = record.get("error")
    if isinstance(error, Mapping) and error.get("type"):
        kept["error"] = {"type": str(error["type"]), "message": str(error.get("message") or "")}
    return {
        "issue_id": change.issue_id,
        "project_id": change.project_id,
        "kind": change.kind,
        "created_at": now,
        "change": {
            "title": change.title,
            "culprit": change.culprit,
            "level": change.level,
            "times_regressed": change.times_regressed,
            "record": kept,
        },
    }


def change_from_notice(row: Any) -> IssueChange:
    """The ``IssueChange`` an ``issue_notices`` row was written for."""
    saved = dict(row.change or {})
    return IssueChange(
        kind=row.kind,
        issue_id=row.issue_id,
        project_id=row.project_id,
        title=str(saved.get("title", "")),
        culprit=str(saved.get("culprit", "")),
        level=int(saved.get("level", 40)),
        times_regressed=int(saved.get("times_regressed", 0)),
        record=dict(saved.get("record") or {}),
    )


#: Asked before a message is sent: ``gate("issue_new" | "issue_regressed", facts)``; False keeps it back
#: (the rules' silences and inhibition, ``opswatch.server.rules.outbox_rules``).
Gate = Callable[[str, Mapping[str, Any]], bool]


def gate_facts(change: IssueChange) -> dict[str, Any]:
    """What a gate may judge an issue message by."""
    return {
        "issue_id": change.issue_id,
        "project_id": change.project_id,
        "title": change.title,
        "level": change.level,
        "environment": change.record.get("environment"),
        "times_regressed": change.times_regressed,
    }


#: The channels a message goes to: ``channels("issue_new" | "issue_regressed")``, None for all
#: (the rule's ``channels``, ``opswatch.server.rules.outbox_rules``).
Channels = Callable[[str], Sequence[str] | None]


def notice_table(base_url: str, gate: Gate | None = None, channels: Channels | None = None) -> NoticeTable:
    """The issue notices as an outbox table: leased claims, messages built with links to ``base_url``,
    each sent only if ``gate`` lets it (a message kept back is done, not retried, unless the gate's
    rules hand it back), to the ``channels`` its kind goes to."""

    def build(row: Any) -> tuple[Alert | None, str]:
        change = change_from_notice(row)
        facts = {**gate_facts(change), "notice": f"issue_notices#{row.id}", "since": row.created_at}
        if gate is not None and not gate(f"issue_{change.kind}", facts):
            return None, ROUTE
        return build_alert(change, base_url), ROUTE

    def routed(row: Any) -> Sequence[str] | None:
        return channels(f"issue_{row.kind}") if channels is not None else None

    return NoticeTable(ISSUE_NOTICES, build, lease=limits.ISSUE_NOTICE_LEASE_SECONDS, channels=routed)


class IssueNotices:
    """Sends the waiting issue notices through the server's notifier (``ctx.notifier``, read at each
    round, None when no channel is configured). Called by the ingest hook right after a batch (so a
    message leaves at once) and by the sweeper (what a dead server claimed, or a round that failed)."""

    def __init__(
        self, engine: Any, base_url: str, gate: Gate | None = None, channels: Channels | None = None
    ) -> None:
        self._sender = NoticeSender(engine, notice_table(base_url, gate, channels), None)

    def drain(self, notifier: Any, now: float) -> int:
        """Claim and hand over what waits; how many messages went to ``notifier``. Never raises: a
        failed round is logged and the notices wait for the next one."""
        self._sender.notifier = notifier
        try:
            return self._sender.drain(now)
        except Exception:
            _log.exception("issue notifications could not be sent; they wait for the next round")
            return 0
