"""The messages a monitor's state changes send: one when an episode starts failing, one when it recovers.

Built with the alert library's templates (``SlackNotifications.cron_job_failed`` for failures, the
generic ``alert`` with severity ``resolved`` for recoveries) and sent through the server's
``alerts.delivery.Notifier``, the same delivery code the app's own alerts use. Each message's
fingerprint names the episode, so the notifier never folds two episodes into one, and never repeats one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from ...alerts.message import Alert
from ...alerts.templates import SlackNotifications

#: The notifier route name of monitor messages (its repeat log is keyed by route and fingerprint).
ROUTE = "monitors"

_REASONS = {
    "missed": "missed: no check-in arrived in time",
    "timeout": "timed out: a run did not finish within its max runtime",
    "error": "the run reported a failure and sent no error with it",
}


def stamp(epoch: float | None) -> str:
    """``2025-01-02 02:00:00 UTC``, or ``never``."""
    if epoch is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def describe_failure(details: Mapping[str, Any]) -> str:
    """One line saying why the monitor fails, from a ``failing`` change's details."""
    reason = str(details.get("reason") or "error")
    text = _REASONS.get(reason, reason)
    consecutive = details.get("consecutive")
    if isinstance(consecutive, int) and consecutive > 1:
        text += f" ({consecutive} bad results in a row)"
    return text


def failing_alert(slug: str, project_id: int, at: float, details: Mapping[str, Any]) -> Alert:
    """The cron-job-failure message: the job, what failed (the run's error type and message when the job
    reported one, else the reason), the last good run, and a link to the error's issue when known."""
    since = details.get("since")
    link = details.get("issue_url")
    reason = str(details.get("reason") or "error")
    consecutive = details.get("consecutive")
    if isinstance(consecutive, int) and consecutive > 1:
        reason += f" ({consecutive} bad results in a row)"
    alert = SlackNotifications.cron_job_failed(
        job_name=slug,
        error=_run_error(details) or describe_failure(details),
        url=link if isinstance(link, str) else None,
        fingerprint=f"cron-failing:{project_id}:{slug}:{since}",
        **{
            "Reason": reason,
            "Failing since": stamp(since if isinstance(since, (int, float)) else at),
            "Last good run": stamp(details.get("last_ok_at")),
            "Project": str(project_id),
        },
    )
    return dataclasses.replace(alert, url_label="View issue") if alert.url else alert


def _run_error(details: Mapping[str, Any]) -> str | None:
    """``Type: message`` of the error the failing run reported (``run_errors``), or None."""
    kind = details.get("error_type")
    if not isinstance(kind, str) or not kind:
        return None
    message = details.get("error_message")
    return f"{kind}: {message}" if isinstance(message, str) and message else kind


def recovered_alert(slug: str, project_id: int, at: float, details: Mapping[str, Any]) -> Alert:
    """The recovery message for an episode that was announced."""
    since = details.get("since")
    counts = {key: details.get(key) for key in ("missed", "errors", "timeouts")}
    summary = ", ".join(f"{value} {key}" for key, value in counts.items() if isinstance(value, int) and value)
    return SlackNotifications.alert(
        title="Cron Job Recovered",
        message=f"The scheduled job {slug} is running normally again.",
        severity="resolved",
        fields={
            "Job": slug,
            "Failing since": stamp(since if isinstance(since, (int, float)) else None),
            "Recovered at": stamp(at),
            "During the episode": summary or None,
            "Project": str(project_id),
        },
        fingerprint=f"cron-recovered:{project_id}:{slug}:{since}",
    )


def alert_for(kind: str, slug: str, project_id: int, at: float, details: Mapping[str, Any]) -> Alert | None:
    """The message a change of ``kind`` (``failing`` or ``recovered``) sends, or None."""
    if kind == "failing":
        return failing_alert(slug, project_id, at, details)
    if kind == "recovered":
        return recovered_alert(slug, project_id, at, details)
    return None
