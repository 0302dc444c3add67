"""One evaluation of one rule: read the signal over its window, then advance every instance.

``evaluate(rule, source, now, ingest_delay)`` reads; it never raises: a failed query becomes
``Evaluation.error``. The window is ``[now - ingest_delay - window, now - ingest_delay)``: events still in
flight (SDK batching, spooled retries) land in a window that has not been judged yet, so they cause no
false drop. A rule with ``active`` is only read when the schedule covers both ends of the window.

``advance(rule, evaluation, instances, status)`` is pure: the state machine (``machine``) applied to
every instance the evaluation or the stored state knows, returning what changed and what to announce.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

from ...log import get_logger
from ..store.base import QueryError
from . import baselines
from .machine import Instance, Message, RuleStatus, Verdict, judge, policy_verdict, rule_error, step
from .model import EVENT_SIGNALS, Evaluation, Observation, Rule, instance_key
from .signals import SignalError, SignalSource, UnseenFields

__all__ = ["Outcome", "advance", "evaluate", "instance_key"]

_log = get_logger("opswatch.server.rules")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one evaluation changed: instances to write, messages to log, the rule's new status."""

    instances: tuple[Instance, ...]
    messages: tuple[Message, ...]
    status: RuleStatus


def evaluate(rule: Rule, source: SignalSource, now: float, ingest_delay: float) -> Evaluation:
    """Read ``rule`` at ``now``; an error is returned, never raised."""
    end = now - ingest_delay
    start = end - rule.window
    if rule.active is not None and not (rule.active.covers(start) and rule.active.covers(end - 1e-3)):
        return Evaluation(now, start, end, expected=False)
    try:
        found = baselines.observe(rule, source, start, end)
    except UnseenFields as err:
        return Evaluation(now, start, end, observations=tuple(err.observations), waiting=err.fields)
    except (QueryError, SignalError) as err:
        return Evaluation(now, start, end, error=str(err) or type(err).__name__)
    except Exception as err:  # a store that breaks must not stop the other rules
        _log.error("a rule's evaluation failed unexpectedly", {"rule": rule.name}, err)
        return Evaluation(now, start, end, error=f"{type(err).__name__}: {err}")
    return Evaluation(now, start, end, observations=tuple(found))


def advance(
    rule: Rule, evaluation: Evaluation, instances: Mapping[str, Instance], status: RuleStatus
) -> Outcome:
    """Apply ``evaluation`` to the rule's instances (see the module docstring)."""
    new_status, announce_error = rule_error(status, evaluation)
    messages: list[Message] = []
    if announce_error:
        messages.append(Message("error", "", dict(rule.labels), evaluation.at, reason=evaluation.error))
    plan: list[tuple[Instance, Verdict, Observation | None]] = []
    if not evaluation.expected:
        outside = Verdict(False, reason="outside the rule's active schedule")
        plan = [(instance, outside, None) for instance in instances.values()]
    elif evaluation.error is not None:
        verdict = policy_verdict(rule.on_error, rule, "error", f"evaluation error: {evaluation.error}")
        known = list(instances.values())
        if not known and verdict.breach:
            known = [_fresh(rule, {})]
        plan = [(instance, verdict, None) for instance in known]
    else:
        seen: set[str] = set()
        reading: Observation | None
        for reading in evaluation.observations:
            key = _key_of(tuple(reading.group.items()))
            seen.add(key)
            instance = instances.get(key) or _fresh(rule, reading.group)
            plan.append((instance, judge(rule, instances.get(key), reading), reading))
        for key, instance in instances.items():
            if key not in seen:
                plan.append((instance, judge(rule, instance, None), None))
    changed: list[Instance] = []
    for instance, verdict, reading in plan:
        after, said = step(rule, instance, verdict, reading, evaluation.at)
        changed.append(after)
        messages.extend(_explained(rule, said, reading))
    return Outcome(tuple(changed), tuple(messages), new_status)


def _explained(rule: Rule, said: list[Message], reading: Observation | None) -> list[Message]:
    """Messages with the reading's note as their reason (a change's two values, an anomaly's
    baseline); without the resolve of a moment (a new or regressed issue announces and ends quietly);
    none for a rule whose notice outbox announces it."""
    if rule.outbox:  # its subsystem's outbox announces it (``outbox_rules``)
        return []
    if rule.signal in EVENT_SIGNALS:
        said = [m for m in said if m.kind != "resolved"]
    if reading is None or reading.note is None:
        return said
    return [m if m.reason else dataclasses.replace(m, reason=reading.note) for m in said]


@functools.lru_cache(maxsize=65_536)
def _key_of(group: tuple[tuple[str, str], ...]) -> str:
    """``instance_key`` of a group given as its items: a round computes one per reading, of label sets
    that come back round after round, and canonical JSON costs several times this lookup."""
    return instance_key(dict(group))


def _fresh(rule: Rule, group: Mapping[str, str]) -> Instance:
    labels = {"rule": rule.name, **rule.labels, **group}
    return Instance(key=instance_key(group), labels=labels)
