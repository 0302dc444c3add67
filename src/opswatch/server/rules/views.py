"""What the API shows of rules, alert instances and the notification history (plain JSON objects)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..query import jsonable
from .durations import format_duration
from .machine import Instance, RuleStatus
from .model import Evaluation, Rule


def _time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    import datetime

    return str(jsonable(datetime.datetime.fromtimestamp(epoch, datetime.UTC)))


def rule_view(
    rule: Rule, status: RuleStatus | None = None, counts: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """A rule: its keys as the file spells them, its status and how many instances are in each state."""
    keys: dict[str, Any] = {
        "name": rule.name,
        "signal": rule.signal,
        "field": rule.field,
        "where": rule.where,
        "sql": rule.sql,
        "group_by": list(rule.group_by),
        "window": format_duration(rule.window),
        "warning": str(rule.warning) if rule.warning else None,
        "critical": str(rule.critical) if rule.critical else None,
        "resolve": str(rule.resolve) if rule.resolve else None,
        "min_events": rule.min_events,
        "for": format_duration(rule.for_),
        "keep_firing_for": format_duration(rule.keep_firing_for),
        "template": rule.template,
        "active": {"schedule": rule.active.text, "timezone": rule.active.timezone} if rule.active else None,
        "channels": list(rule.channels),
        "labels": dict(rule.labels),
        "no_data": rule.no_data,
        "on_error": rule.on_error,
        "source": rule.source,
        "kind": rule.kind,
    }
    if rule.compare is not None:
        keys["compare"] = format_duration(rule.compare)
    if rule.anomaly is not None:
        keys["anomaly"] = dataclasses.asdict(rule.anomaly)
    if rule.compare is not None or rule.anomaly is not None:
        keys["timezone"] = rule.timezone
    if rule.issues is not None:
        keys["issues"] = {k: v for k, v in dataclasses.asdict(rule.issues).items() if v is not None}
    if status is not None:
        keys["last_eval_at"] = _time(status.last_eval_at)
        keys["error"] = status.error
        keys["error_since"] = _time(status.error_since)
        keys["expected"] = status.expected
        keys["waiting_for"] = list(status.waiting)
    if counts is not None:
        keys["instances"] = dict(counts)
    return keys


def instance_view(rule: str, instance: Instance) -> dict[str, Any]:
    """One alert instance and its state."""
    return {
        "rule": rule,
        "labels": dict(instance.labels),
        "state": instance.status,
        "severity": instance.severity,
        "health": instance.health,
        "value": instance.value,
        "events": instance.events,
        "pending_since": _time(instance.pending_since),
        "firing_since": _time(instance.firing_since),
        "resolved_at": _time(instance.resolved_at),
        "last_eval_at": _time(instance.last_eval_at),
        "flapping": instance.flapping,
    }


def notification_view(row: Any) -> dict[str, Any]:
    """One row of the notification log (the alert history)."""
    return {
        "id": row.id,
        "rule": row.rule,
        "kind": row.kind,
        "labels": dict(row.labels or {}),
        "severity": row.severity,
        "value": row.value,
        "started_at": _time(row.started_at),
        "at": _time(row.at),
        "reason": row.reason,
        "status": row.status,
        "notified_at": _time(row.notified_at),
        "silence_id": row.silence_id,
    }


def evaluation_view(rule: Rule, evaluation: Evaluation) -> dict[str, Any]:
    """A preview evaluation: the window and each instance's value and level."""
    return {
        "rule": rule.name,
        "at": _time(evaluation.at),
        "window_start": _time(evaluation.window_start),
        "window_end": _time(evaluation.window_end),
        "expected": evaluation.expected,
        "error": evaluation.error,
        "waiting_for": list(evaluation.waiting),
        "instances": [
            {
                "labels": dict(o.group),
                "value": o.value,
                "events": o.events,
                "level": rule.level(o.value),
                **({"note": o.note} if o.note is not None else {}),
            }
            for o in evaluation.observations
        ],
    }
