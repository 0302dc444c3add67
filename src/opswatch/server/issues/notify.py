"""Messages about issues: one when an issue is new, one each time it regresses, with a link to it.

The messages go through the same delivery code as the app's alerts (``opswatch.alerts``): this module only
builds ``Alert``s and hands them to the server's notifier, which queues them and returns at once, so the
ingest request that caused them never waits for Slack. Each alert carries a fingerprint of its own
(``issue-<id>-new``, ``issue-<id>-regressed-<n>``) so that the notifier's repeat suppression never folds
two different issues, or two regressions of one issue, into one message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ...alerts.message import Alert, cut, facts
from ...record import level_name
from .upsert import IssueChange

_log = logging.getLogger("opswatch.server.issues")

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


def announce(
    notifier: Any,
    changes: list[IssueChange],
    base_url: str,
    *,
    notify_new: bool = True,
    notify_regressed: bool = True,
) -> int:
    """Hand a message for each wanted change to ``notifier`` (its ``send``); returns how many were handed
    over. Never raises: a broken notifier is logged, and ingest carries on."""
    sent = 0
    for change in changes:
        if (change.kind == "new" and not notify_new) or (change.kind == "regressed" and not notify_regressed):
            continue
        try:
            notifier.send(build_alert(change, base_url), route="issues")
            sent += 1
        except Exception:  # monitoring must not break ingest
            _log.exception(
                "could not hand the %s-issue message for issue %s to the notifier",
                change.kind,
                change.issue_id,
            )
    return sent
