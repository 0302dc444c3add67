"""The alert state machine: pure functions from (rule, last state, reading, now) to (new state, messages).

Each instance (one label set of a rule) moves ``inactive -> pending -> firing -> inactive``:

* A reading *breaches* when it crosses ``critical`` or ``warning``; an instance that is pending or firing
  keeps breaching until the value crosses ``resolve`` (hysteresis; without ``resolve``, until it crosses
  neither level). ``min_events``: a reading from fewer events is not judged: an inactive instance stays
  inactive, a pending or firing one keeps its state (no events at all is no data, below).
* ``for``: a breach first makes the instance pending; it fires once it has breached for ``for`` seconds
  (at once when ``for`` is 0). A pending instance that stops breaching goes back to inactive, silently.
* A firing instance resolves when it stops breaching, unless it stopped less than ``keep_firing_for``
  seconds ago (counted from the first evaluation that did not breach, as Prometheus does).
  Warning -> critical is an ``updated`` message of the same incident; a drop back to warning is
  recorded but not announced.
* No data (the group vanished, or nothing to compute the value from) and evaluation errors follow the
  rule's policy: ``ok`` (stop breaching), ``alerting`` (breach at the rule's top level) or ``keep_last``
  (nothing changes). ``health`` says which. An error is announced once per episode (``RuleStatus``).
* Flapping: more than ``limits.RULES_FLAP_TRANSITIONS`` fire/resolve transitions within an hour marks the
  instance flapping with one message; while flapping no firing/resolved messages go out; after an hour
  without transitions one ``stable`` message says where it ended up.

Nothing here reads a clock or a database; ``store.py`` persists, the evaluator calls ``step``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final, Literal

from .. import limits
from .model import Evaluation, Observation, Rule, Severity

Status = Literal["inactive", "pending", "firing"]
Health = Literal["ok", "nodata", "error"]
Kind = Literal["firing", "updated", "resolved", "flapping", "stable", "error"]

FLAP_PERIOD: Final = 3600.0
_RANK: Final = {None: 0, "warning": 1, "critical": 2}


@dataclasses.dataclass(frozen=True)
class Instance:
    """The state of one label set of a rule (what ``store.py`` keeps in ``rule_instances``)."""

    key: str
    labels: Mapping[str, str]
    status: Status = "inactive"
    severity: Severity | None = None
    health: Health = "ok"
    value: float | None = None
    events: int | None = None
    pending_since: float | None = None
    firing_since: float | None = None
    last_breach_at: float | None = None
    #: When a firing instance first stopped breaching (``keep_firing_for`` counts from here).
    clear_since: float | None = None
    resolved_at: float | None = None
    last_eval_at: float | None = None
    transitions: tuple[float, ...] = ()
    flapping: bool = False
    version: int = 0


@dataclasses.dataclass(frozen=True)
class Message:
    """Something to announce: a transition of one instance (or of the rule, for ``error``)."""

    kind: Kind
    key: str
    labels: Mapping[str, str]
    at: float
    severity: Severity | None = None
    value: float | None = None
    started_at: float | None = None
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class RuleStatus:
    """Rule-wide state: the last evaluation, and the error episode in progress (announced once)."""

    last_eval_at: float | None = None
    error: str | None = None
    error_since: float | None = None
    expected: bool = True
    #: Fields the rule names that no stored event has had yet.
    waiting: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What one reading means for an instance: breach at ``severity``, clear, or keep (``None``)."""

    breach: bool | None
    severity: Severity | None = None
    health: Health = "ok"
    reason: str | None = None


KEEP: Final = Verdict(None)


def top_level(rule: Rule) -> Severity:
    """The most severe level the rule has."""
    return "critical" if rule.critical is not None else "warning"


def judge(rule: Rule, instance: Instance | None, reading: Observation | None) -> Verdict:
    """The verdict of ``reading`` (None: no data for this instance) given the instance's state."""
    if reading is None or reading.value is None:
        return policy_verdict(rule.no_data, rule, "nodata", "no data")
    if rule.min_events and (reading.events is None or reading.events < rule.min_events):
        # Too few events to judge: nothing starts, and nothing resolves on thin traffic either.
        return Verdict(None, reason=f"fewer than {rule.min_events} events")
    level = rule.level(reading.value)
    if level is not None:
        return Verdict(True, level)
    holding = instance is not None and instance.status != "inactive" and rule.resolve is not None
    if (
        holding
        and instance is not None
        and rule.resolve is not None
        and not rule.resolve.matches(reading.value)
    ):
        return Verdict(True, instance.severity or top_level(rule), reason="not yet below resolve")
    return Verdict(False)


def policy_verdict(policy: str, rule: Rule, health: Health, reason: str) -> Verdict:
    """The verdict a no-data or error policy asks for."""
    if policy == "alerting":
        return Verdict(True, top_level(rule), health, reason)
    if policy == "ok":
        return Verdict(False, None, health, reason)
    return Verdict(None, None, health, reason)


def step(
    rule: Rule, instance: Instance, verdict: Verdict, reading: Observation | None, now: float
) -> tuple[Instance, list[Message]]:
    """Apply one verdict at ``now``; the new state and the messages it calls for."""
    if reading is None:
        state = dataclasses.replace(instance, health=verdict.health, last_eval_at=now)
    else:  # one copy, not two: ``step`` runs for every instance of every rule in every round
        state = dataclasses.replace(
            instance, health=verdict.health, last_eval_at=now, value=reading.value, events=reading.events
        )
    messages: list[Message] = []
    if verdict.breach is True:
        state = _breach(rule, state, verdict.severity or top_level(rule), now, verdict.reason, messages)
    elif verdict.breach is False:
        state = _clear(rule, state, now, verdict.reason, messages)
    return _flapping(state, now, messages)


def _message(kind: Kind, state: Instance, now: float, reason: str | None) -> Message:
    return Message(
        kind, state.key, state.labels, now, state.severity, state.value, state.firing_since, reason
    )


def _breach(
    rule: Rule, state: Instance, severity: Severity, now: float, reason: str | None, out: list[Message]
) -> Instance:
    state = dataclasses.replace(state, last_breach_at=now, clear_since=None)
    if state.status == "firing":
        if _RANK[severity] > _RANK[state.severity]:
            state = dataclasses.replace(state, severity=severity)
            out.append(_message("updated", state, now, reason))
        elif severity != state.severity:
            state = dataclasses.replace(state, severity=severity)
        return state
    if state.status == "inactive":
        state = dataclasses.replace(state, status="pending", pending_since=now, severity=severity)
    elif _RANK[severity] > _RANK[state.severity]:
        state = dataclasses.replace(state, severity=severity)
    assert state.pending_since is not None
    if now - state.pending_since >= rule.for_:
        state = dataclasses.replace(
            state,
            status="firing",
            firing_since=now,
            resolved_at=None,
            transitions=(*state.transitions, now),
        )
        out.append(_message("firing", state, now, reason))
    return state


def _clear(rule: Rule, state: Instance, now: float, reason: str | None, out: list[Message]) -> Instance:
    if state.status == "pending":
        return dataclasses.replace(state, status="inactive", pending_since=None, severity=None)
    if state.status != "firing":
        return state
    if rule.keep_firing_for:
        since = state.clear_since if state.clear_since is not None else now
        if now - since < rule.keep_firing_for:
            return dataclasses.replace(state, clear_since=since)
    out.append(_message("resolved", state, now, reason))
    return dataclasses.replace(
        state,
        status="inactive",
        pending_since=None,
        clear_since=None,
        resolved_at=now,
        transitions=(*state.transitions, now),
    )


def _flapping(state: Instance, now: float, out: list[Message]) -> tuple[Instance, list[Message]]:
    recent = tuple(t for t in state.transitions if now - t < FLAP_PERIOD)
    if recent != state.transitions:
        state = dataclasses.replace(state, transitions=recent)
    if not state.flapping and len(recent) > limits.RULES_FLAP_TRANSITIONS:
        state = dataclasses.replace(state, flapping=True)
        quiet = [m for m in out if m.kind not in ("firing", "resolved", "updated")]
        reason = f"{len(recent)} fire/resolve transitions within an hour"
        return state, [*quiet, _message("flapping", state, now, reason)]
    if state.flapping:
        if recent:
            return state, [m for m in out if m.kind not in ("firing", "resolved", "updated")]
        state = dataclasses.replace(state, flapping=False)
        return state, [*out, _message("stable", state, now, f"no transitions for an hour; {state.status}")]
    return state, out


def rule_error(status: RuleStatus, evaluation: Evaluation) -> tuple[RuleStatus, bool]:
    """The rule's status after ``evaluation``, and whether a new error episode must be announced."""
    if evaluation.error is None:
        return RuleStatus(evaluation.at, None, None, evaluation.expected, evaluation.waiting), False
    started = status.error_since is None
    since = evaluation.at if started else status.error_since
    return RuleStatus(evaluation.at, evaluation.error, since, evaluation.expected), started
