"""The alert state machine, one semantic case per test, with an injected clock (times are arguments).

The harness feeds ``evaluate.advance`` the readings an evaluation would produce at given times and keeps
the state between calls the way the store does.
"""

from __future__ import annotations

from typing import Any

from opswatch.server import limits
from opswatch.server.rules.evaluate import advance, instance_key
from opswatch.server.rules.load import rule_from_mapping
from opswatch.server.rules.machine import Instance, Message, RuleStatus
from opswatch.server.rules.model import Evaluation, Observation

T0 = 1_800_000_000.0


class Harness:
    """One rule, its state, and the messages each evaluation produced."""

    def __init__(self, **keys: Any) -> None:
        data: dict[str, Any] = {
            "name": "errors",
            "signal": "error_ratio",
            "window": "5m",
            "critical": "> 0.05",
        }
        self.rule = rule_from_mapping({**data, **keys})
        self.instances: dict[str, Instance] = {}
        self.status = RuleStatus()
        self.said: list[Message] = []

    def _apply(self, evaluation: Evaluation) -> list[str]:
        outcome = advance(self.rule, evaluation, self.instances, self.status)
        self.instances.update({i.key: i for i in outcome.instances})
        self.status = outcome.status
        self.said.extend(outcome.messages)
        return [m.kind for m in outcome.messages]

    def read(self, minute: float, value: float | None, events: int = 100, **group: str) -> list[str]:
        """An evaluation ``minute`` minutes after T0 that saw ``value`` (for the group ``group``)."""
        at = T0 + 60 * minute
        return self._apply(Evaluation(at, at - 300, at, (Observation(group, value, events),)))

    def services(self, minute: float, values: dict[str, float]) -> list[str]:
        """An evaluation that saw one value per service."""
        at = T0 + 60 * minute
        found = tuple(Observation({"service": name}, value, 100) for name, value in values.items())
        return self._apply(Evaluation(at, at - 300, at, found))

    def nothing(self, minute: float) -> list[str]:
        """An evaluation that found no rows at all (every group vanished)."""
        at = T0 + 60 * minute
        return self._apply(Evaluation(at, at - 300, at, ()))

    def error(self, minute: float, message: str = "query timed out") -> list[str]:
        at = T0 + 60 * minute
        return self._apply(Evaluation(at, at - 300, at, error=message))

    def outside(self, minute: float) -> list[str]:
        at = T0 + 60 * minute
        return self._apply(Evaluation(at, at - 300, at, expected=False))

    def state(self, **group: str) -> Instance:
        return self.instances[instance_key(group)]


def test_it_goes_pending_then_fires_after_for() -> None:
    h = Harness(**{"for": "2m"})
    assert h.read(0, 0.10) == []
    assert h.state().status == "pending" and h.state().pending_since == T0
    assert h.read(1, 0.10) == []
    assert h.read(2, 0.10) == ["firing"]
    firing = h.state()
    assert firing.status == "firing" and firing.firing_since == T0 + 120 and firing.severity == "critical"


def test_it_drops_a_pending_instance_silently_when_the_breach_ends() -> None:
    h = Harness(**{"for": "2m"})
    h.read(0, 0.10)
    assert h.read(1, 0.01) == []
    assert h.state().status == "inactive" and h.state().pending_since is None
    assert h.read(2, 0.10) == [] and h.state().pending_since == T0 + 120  # the wait starts over


def test_it_fires_at_once_without_for_and_resolves_with_the_incident_start() -> None:
    h = Harness()
    assert h.read(0, 0.10) == ["firing"]
    assert h.read(5, 0.01) == ["resolved"]
    resolved = h.said[-1]
    assert resolved.started_at == T0 and resolved.at == T0 + 300
    assert h.state().status == "inactive" and h.state().resolved_at == T0 + 300


def test_it_keeps_firing_for_keep_firing_for_after_the_breach_ends() -> None:
    h = Harness(keep_firing_for="3m")
    h.read(0, 0.10)
    assert h.read(1, 0.0) == [] and h.state().status == "firing"
    assert h.read(3, 0.0) == [] and h.state().status == "firing"
    assert h.read(4, 0.0) == ["resolved"]  # three minutes after the first reading that did not breach
    assert h.read(5, 0.10) == ["firing"] and h.read(6, 0.0) == [] and h.read(7, 0.10) == []
    assert h.read(11, 0.0) == [] and h.read(14, 0.0) == ["resolved"]  # a new breach restarts the count


def test_it_announces_warning_to_critical_as_an_update_of_the_same_incident() -> None:
    h = Harness(warning="> 0.02")
    assert h.read(0, 0.03) == ["firing"] and h.said[-1].severity == "warning"
    assert h.read(1, 0.09) == ["updated"]
    update = h.said[-1]
    assert update.severity == "critical" and update.started_at == T0
    assert h.read(2, 0.03) == [] and h.state().severity == "warning"  # a drop back is not announced
    assert h.state().firing_since == T0


def test_it_resolves_only_past_the_resolve_threshold() -> None:
    h = Harness(warning="> 0.02", resolve="< 0.01")
    h.read(0, 0.09)
    assert h.read(1, 0.015) == [] and h.state().status == "firing"  # under warning, not under resolve
    assert h.state().severity == "critical"
    assert h.read(2, 0.005) == ["resolved"]


def test_it_neither_fires_nor_resolves_below_min_events() -> None:
    h = Harness(min_events=20)
    assert h.read(0, 1.0, events=19) == [] and h.state().status == "inactive"
    assert h.read(1, 1.0, events=20) == ["firing"]
    assert h.read(2, 0.0, events=3) == [] and h.state().status == "firing"  # too thin to resolve on
    assert h.read(3, None, events=0) == ["resolved"] and h.said[-1].reason == "no data"


def test_it_treats_no_data_as_ok_by_default() -> None:
    h = Harness(group_by=["service"])
    h.read(0, 0.10, service="checkout")
    assert h.nothing(1) == ["resolved"]
    state = h.state(service="checkout")
    assert state.health == "nodata" and state.status == "inactive" and h.said[-1].reason == "no data"


def test_it_fires_on_no_data_when_the_policy_says_alerting() -> None:
    h = Harness(signal="avg", field="amount", no_data="alerting")
    assert h.read(0, None, events=0) == ["firing"]
    assert h.state().health == "nodata" and h.said[-1].reason == "no data"


def test_it_keeps_the_last_state_on_no_data_when_the_policy_says_keep_last() -> None:
    h = Harness(group_by=["service"], no_data="keep_last")
    h.read(0, 0.10, service="checkout")
    assert h.nothing(1) == [] and h.nothing(30) == []
    state = h.state(service="checkout")
    assert state.status == "firing" and state.health == "nodata"


def test_it_announces_an_evaluation_error_once_and_neither_fires_nor_resolves() -> None:
    h = Harness()
    h.read(0, 0.10)
    assert h.error(1) == ["error"]
    assert h.error(2) == [] and h.error(3) == []
    assert h.state().status == "firing" and h.state().health == "error"
    assert h.status.error == "query timed out" and h.status.error_since == T0 + 60
    assert h.read(4, 0.10) == [] and h.status.error is None and h.state().health == "ok"
    assert h.error(5) == ["error"]  # a new episode is announced again


def test_it_says_why_when_an_error_policy_resolves_or_fires() -> None:
    resolving = Harness(on_error="ok")
    resolving.read(0, 0.10)
    assert resolving.error(1) == ["error", "resolved"]
    assert resolving.said[-1].reason == "evaluation error: query timed out"
    firing = Harness(on_error="alerting")
    assert firing.error(0, "no such field") == ["error", "firing"]
    assert firing.said[-1].reason == "evaluation error: no such field"


def test_it_marks_an_instance_flapping_once_and_goes_quiet_until_it_is_stable() -> None:
    h = Harness()
    kinds: list[str] = []
    for minute in range(limits.RULES_FLAP_TRANSITIONS + 1):
        kinds += h.read(minute * 2, 0.10) + h.read(minute * 2 + 1, 0.0)
    assert kinds.count("flapping") == 1
    assert kinds.count("firing") + kinds.count("resolved") == limits.RULES_FLAP_TRANSITIONS
    assert h.state().flapping
    assert h.read(20, 0.10) + h.read(21, 0.0) == []  # transitions while flapping are not announced
    assert h.read(60, 0.0) == [] and h.state().flapping  # the last transition was 39 minutes ago
    assert h.read(82, 0.0) == ["stable"]
    assert not h.state().flapping and h.said[-1].reason is not None and "inactive" in h.said[-1].reason
    assert h.read(83, 0.10) == ["firing"]


def test_it_resolves_outside_the_active_schedule_and_says_so() -> None:
    h = Harness(signal="count", critical="< 1", active={"schedule": "* 8-20 * * 0"})
    h.read(0, 0.0)
    assert h.outside(1) == ["resolved"]
    assert h.said[-1].reason == "outside the rule's active schedule"


def test_it_keeps_one_instance_per_group() -> None:
    h = Harness(group_by=["service"])
    assert h.services(0, {"checkout": 0.10, "search": 0.0}) == ["firing"]
    assert h.state(service="checkout").status == "firing"
    assert h.state(service="search").status == "inactive"
    assert h.state(service="checkout").labels == {"rule": "errors", "service": "checkout"}


def test_it_waits_quietly_for_fields_never_seen_and_says_so_in_the_status() -> None:
    h = Harness(group_by=["region"])
    at = T0 + 60
    kinds = h._apply(Evaluation(at, at - 300, at, (), waiting=("region",)))
    assert kinds == [] and h.status.waiting == ("region",) and h.status.error is None
    assert h.read(2, 0.10, region="eu") == ["firing"] and h.status.waiting == ()
