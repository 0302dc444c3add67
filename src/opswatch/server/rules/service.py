"""The evaluation round: every rule read, judged and written, one rule at a time.

``RuleService.run_once(now)`` evaluates every rule at ``now`` (one catch-up evaluation after downtime,
never one per missed interval: state carries the times, so ``for`` and ``keep_firing_for`` count from
what was stored). A round reads all rules' state in one snapshot; each rule whose outcome changes
something durable is written in its own transaction (``store.RuleStore.save``, which detects a
concurrent writer per rule), and the rules that change nothing (most: inactive and staying so) only
have their evaluation time moved, together at the end of the round (``store.RuleStore.touch``). A rule whose
evaluation fails is an evaluation error for that rule only. ``preview(name, now)`` evaluates a rule
without writing anything (``opswatch rules eval``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from ...log import get_logger
from .evaluate import Outcome, advance, evaluate
from .issue_signals import IssueSource, Routed
from .machine import Instance, RuleStatus
from .model import Evaluation, Rule
from .monitor_signals import MonitorSource
from .signals import SignalSource
from .store import Conflict, RuleStore, changes_nothing, retire

_log = get_logger("opswatch.server.rules")


@dataclasses.dataclass(frozen=True)
class RoundReport:
    """One round: rules evaluated, rules whose evaluation errored, messages logged, conflicts skipped."""

    evaluated: int = 0
    errors: int = 0
    messages: int = 0
    conflicts: int = 0


class UnknownRule(LookupError):
    """No rule has that name."""


class RuleService:
    """The rules of one server and their evaluation."""

    def __init__(
        self,
        engine: Engine,
        source: SignalSource,
        rules: Sequence[Rule],
        *,
        ingest_delay: float = 30.0,
        now: Callable[[], float] | None = None,
        issues: SignalSource | None = None,
    ) -> None:
        self.state = RuleStore(engine)
        #: Issue rules read the state store's issues (``issues``, by default without an event store,
        #: so ``issue_users`` needs one passed in); the others read ``source``.
        self.source: SignalSource = Routed(source, issues or IssueSource(engine), MonitorSource(engine))
        self.rules: dict[str, Rule] = {rule.name: rule for rule in rules}
        self.ingest_delay = ingest_delay
        self.now = now or time.time
        self.rounds = 0
        #: The latest reading of each instance, ``rule -> key -> instance``, for the API: readings are
        #: not written to the state store unless the state changes (``store.RuleStore.save``).
        self.readings: dict[str, dict[str, Instance]] = {}

    def rule(self, name: str) -> Rule:
        """The rule called ``name``; ``UnknownRule`` otherwise."""
        try:
            return self.rules[name]
        except KeyError:
            raise UnknownRule(f"no rule is called {name!r}") from None

    def preview(self, name: str, now: float | None = None) -> Evaluation:
        """Evaluate one rule without changing its state."""
        return evaluate(self.rule(name), self.source, self.now() if now is None else now, self.ingest_delay)

    def evaluate_rule(self, rule: Rule, now: float) -> Outcome | None:
        """Evaluate ``rule`` at ``now`` and write the outcome; None when another server wrote first."""
        instances = self.state.instances(rule.name)
        status = self.state.status(rule.name)
        outcome = advance(rule, evaluate(rule, self.source, now, self.ingest_delay), instances, status)
        return self._save(rule, outcome, instances, now)

    def _save(
        self, rule: Rule, outcome: Outcome, instances: dict[str, Instance], now: float
    ) -> Outcome | None:
        try:
            self.state.save(rule, outcome, instances, now)
        except Conflict:
            return None
        self.readings[rule.name] = {instance.key: instance for instance in outcome.instances}
        return outcome

    def _evaluate_from(
        self,
        rule: Rule,
        now: float,
        instances: dict[str, Instance],
        stored: RuleStatus | None,
        touched: dict[float | None, list[str]],
    ) -> Outcome | None:
        """Evaluate ``rule`` from the round's snapshot; save it, or (when it changes nothing durable)
        add it to ``touched`` (status time -> rules) for the round's one batched write."""
        status = stored if stored is not None else RuleStatus()
        outcome = advance(rule, evaluate(rule, self.source, now, self.ingest_delay), instances, status)
        if not changes_nothing(outcome, instances, stored):
            return self._save(rule, outcome, instances, now)
        touched.setdefault(outcome.status.last_eval_at, []).append(rule.name)
        self.readings[rule.name] = {instance.key: instance for instance in outcome.instances}
        return outcome

    def latest(self, rule: str, stored: Instance) -> Instance:
        """``stored`` with this server's latest reading of it, when it has one of the same state."""
        seen = self.readings.get(rule, {}).get(stored.key)
        return seen if seen is not None and seen.status == stored.status else stored

    def run_once(self, now: float | None = None) -> RoundReport:
        """Evaluate every rule once at ``now``; never raises."""
        when = self.now() if now is None else now
        evaluated = errors = messages = conflicts = 0
        if self.rounds == 0:
            try:  # the first round after a start: alerts of rules taken out of the file resolve
                messages += retire(self.state.engine, self.rules, when)
            except Exception as err:
                _log.error("alerts of removed rules could not be resolved", None, err)
        try:
            snapshot: tuple[dict[str, dict[str, Instance]], dict[str, RuleStatus]] | None
            snapshot = self.state.snapshot()
        except Exception as err:  # each rule then reads its own state (and fails on its own)
            _log.error("the rules' state could not be read", None, err)
            snapshot = None
        touched: dict[float | None, list[str]] = {}
        for rule in list(self.rules.values()):
            try:
                if snapshot is None:
                    outcome = self.evaluate_rule(rule, when)
                else:
                    instances, statuses = snapshot
                    outcome = self._evaluate_from(
                        rule, when, instances.get(rule.name, {}), statuses.get(rule.name), touched
                    )
            except Exception as err:  # the state store failed: this rule waits for the next round
                errors += 1
                _log.error("a rule could not be evaluated", {"rule": rule.name}, err)
                continue
            if outcome is None:
                conflicts += 1
                continue
            evaluated += 1
            errors += outcome.status.error is not None
            messages += len(outcome.messages)
        for at, names in touched.items():
            if at is None:
                continue
            try:
                self.state.touch(names, at)
            except Exception as err:  # their state is unchanged; only the evaluation time is not stored
                errors += len(names)
                evaluated -= len(names)
                _log.error("the rules' evaluation time could not be stored", {"rules": len(names)}, err)
        self.rounds += 1
        return RoundReport(evaluated, errors, messages, conflicts)
