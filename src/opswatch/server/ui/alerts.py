"""What the Alerts pages show: each rule's state, the alert instances, history and silences; and the
silence form read into what the silences service takes.

Everything comes from the rules runtime (``opswatch.server.rules.rules_for``), the same objects the
``/api/0/rules``, ``/api/0/alerts`` and ``/api/0/silences`` answers are made of.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Final

from ..context import ServerContext
from ..rules import Rules, rules_for
from ..rules.durations import parse_duration
from ..rules.machine import Instance, RuleStatus
from ..rules.model import Rule
from ..rules.service import UnknownRule
from ..rules.silences import Matcher, Silence, SilenceError, parse_matcher_text, parse_matchers
from ..rules.store import history
from ..rules.views import instance_view, notification_view, rule_view
from .pages import NotInstalled
from .signal_chart import line_chart, signal_series

#: Notification log rows the list page and a rule's page show.
HISTORY_ROWS: Final = 50
#: The silence form's duration choices offered as examples.
DURATION_HINT: Final = "e.g. 30m, 2h, 1d"
_RANK: Final = {"firing": 3, "pending": 2, "inactive": 1}


def runtime(ctx: ServerContext) -> Rules:
    """The rules runtime; ``NotInstalled`` when rules are not installed on this server."""
    try:
        return rules_for(ctx)
    except LookupError as err:
        raise NotInstalled(str(err)) from None


def rule_state(status: RuleStatus, instances: list[Instance]) -> dict[str, Any]:
    """A rule's state in one word (``error``, ``firing``, ``flapping``, ``pending``, ``no data``,
    ``inactive``), its severity, the value of its worst instance and since when."""
    worst = max(instances, key=lambda i: (_RANK[i.status], i.value or 0), default=None)
    state, since = "inactive", None
    if status.error is not None:
        state, since = "error", status.error_since
    elif worst is not None and worst.status != "inactive":
        state = worst.status
        since = worst.firing_since if worst.status == "firing" else worst.pending_since
    elif status.waiting or any(i.health == "nodata" for i in instances):
        state = "no data"
    if state != "error" and any(i.flapping for i in instances):  # also between its firings
        state = "flapping"
    return {
        "state": state,
        "severity": worst.severity if worst is not None and worst.status != "inactive" else None,
        "value": worst.value if worst is not None else None,
        "since": since,
        "expected": status.expected,
    }


def alert_list(ctx: ServerContext) -> dict[str, Any]:
    """Every rule with its state, the firing and pending instances, the recent history, the silences."""
    rules = runtime(ctx)
    service = rules.service
    by_rule: dict[str, list[Instance]] = {}
    for name, instance in service.state.all_instances():
        by_rule.setdefault(name, []).append(service.latest(name, instance))
    items = []
    for rule in service.rules.values():
        view = rule_view(rule, service.state.status(rule.name))
        items.append({**view, **rule_state(service.state.status(rule.name), by_rule.get(rule.name, []))})
    items.sort(key=lambda item: (-_state_rank(item["state"]), item["name"]))
    active = [
        instance_view(name, instance)
        for name, found in by_rule.items()
        for instance in found
        if instance.status in ("firing", "pending")
    ]
    active.sort(key=lambda item: (item["state"] != "firing", item["rule"]))
    rows = history(service.state.engine, None, HISTORY_ROWS)
    now = service.now()
    return {
        "rules": items,
        "active": active,
        "history": [notification_view(row) for row in rows],
        "silences": [s.as_dict(now) for s in rules.dispatcher.silences.all()],
    }


def _state_rank(state: str) -> int:
    return {"error": 5, "firing": 4, "flapping": 4, "pending": 3, "no data": 2}.get(state, 0)


def alert_detail(ctx: ServerContext, name: str) -> dict[str, Any]:
    """One rule: its keys and state, instances, history, the silences that can mute it, and its chart."""
    rules = runtime(ctx)
    service = rules.service
    try:
        rule = service.rule(name)
    except UnknownRule as err:
        raise LookupError(str(err)) from None
    status = service.state.status(name)
    instances = [service.latest(name, i) for _r, i in service.state.all_instances(name)]
    rows = history(service.state.engine, name, HISTORY_ROWS)
    now = service.now()
    data = signal_series(rule, service.source, now, service.ingest_delay)
    thresholds = {
        "warning": rule.warning.value if rule.warning else None,
        "critical": rule.critical.value if rule.critical else None,
        "resolve": rule.resolve.value if rule.resolve else None,
    }
    chart = line_chart(data, thresholds, firing_periods(rows, instances, now))
    return {
        **rule_view(rule, status),
        **rule_state(status, instances),
        "alerts": [instance_view(name, i) for i in instances],
        "history": [notification_view(row) for row in rows],
        "silences": [s.as_dict(now) for s in rules.dispatcher.silences.all() if may_mute(s, rule)],
        "chart": chart,
        "chart_errors": list(data.errors),
        "series": [s.name for s in data.series],
    }


def firing_periods(rows: list[Any], instances: list[Instance], now: float) -> list[tuple[float, float]]:
    """When the rule fired: each resolved incident of the log (its start to its resolve) and each
    instance firing now (its start to ``now``)."""
    periods = [
        (float(row.started_at), float(row.at))
        for row in rows
        if row.kind == "resolved" and row.started_at is not None
    ]
    periods += [(i.firing_since, now) for i in instances if i.status == "firing" and i.firing_since]
    return periods


def may_mute(silence: Silence, rule: Rule) -> bool:
    """Whether ``silence`` can mute some alert of ``rule``: its ``rule`` matchers match the rule's name
    and its other matchers do not contradict the rule's own labels."""
    labels: Mapping[str, str] = {**rule.labels, "rule": rule.name}
    return all(m.matches(labels) for m in silence.matchers if m.name in labels)


# -- the silence form --------------------------------------------------------------------------------


def silence_from_form(form: Mapping[str, str], now: float) -> dict[str, Any]:
    """The silence the form describes: ``rule`` (a name, or ``=~regex``), ``matchers`` (one
    ``name=value`` or ``name=~regex`` a line), ``starts_at`` (UTC, ``YYYY-MM-DDTHH:MM``; empty: now),
    ``ends_at`` or ``duration``, ``author``, ``comment``. ``SilenceError`` names the bad field."""
    matchers: list[Matcher] = []
    rule = form.get("rule", "").strip()
    if rule:
        regex = rule.startswith("=~")
        matchers += parse_matchers([{"name": "rule", "value": rule[2:] if regex else rule, "regex": regex}])
    for index, line in enumerate(form.get("matchers", "").splitlines()):
        if line.strip():
            try:
                matchers.append(parse_matcher_text(line.strip()))
            except SilenceError as err:
                raise SilenceError(f"matchers, line {index + 1}: {err}") from None
    if not matchers:
        raise SilenceError("matchers: give a rule or at least one label matcher (name=value or name=~regex)")
    starts_at = _moment(form.get("starts_at", ""), "starts_at") or now
    duration, ends = form.get("duration", "").strip(), form.get("ends_at", "").strip()
    if duration and ends:
        raise SilenceError("duration: give a duration or an end, not both")
    if duration:
        try:
            ends_at = starts_at + parse_duration(duration)
        except ValueError as err:
            raise SilenceError(f"duration: {err}") from None
    else:
        found = _moment(ends, "ends_at")
        if found is None:
            raise SilenceError(f"duration: how long the silence lasts ({DURATION_HINT}), or an end")
        ends_at = found
    return {
        "matchers": tuple(matchers),
        "starts_at": starts_at,
        "ends_at": ends_at,
        "author": form.get("author", ""),
        "comment": form.get("comment", "").strip()[:2000],
    }


def _moment(text: str, field: str) -> float | None:
    """A UTC time from the form (``2026-12-03T14:30`` as a browser's datetime-local sends it)."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        example = "2026-12-03T14:30"
        raise SilenceError(f"{field}: expected a UTC time such as {example}, got {text[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()
