"""Inhibition: while an instance of a rule with ``inhibits`` fires, notifications of other alerts that
match its matchers and share its values for the ``equal`` labels are muted (Alertmanager's inhibit
rules, declared on the source rule)::

    [[rules]]
    name = "database-down"
    ...
    inhibits = { matchers = ["rule=~.*"], equal = ["service"] }

A muted notification is logged as ``inhibited``, not sent; an alert still firing when the source
resolves is announced then (``notify.follow_up``), like one whose silence ended.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from .silences import Matcher


@dataclasses.dataclass(frozen=True)
class Inhibits:
    """A rule's ``inhibits`` key: whom its firing instances mute."""

    matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Source:
    """A firing instance of a rule that inhibits."""

    rule: str
    labels: Mapping[str, str]
    inhibits: Inhibits


def inhibited(sources: Sequence[Source], rule: str, labels: Mapping[str, str]) -> Source | None:
    """The first source that mutes an alert of ``rule`` with ``labels`` (never one of its own rule)."""
    target = {"rule": rule, **labels}
    for source in sources:
        if source.rule == rule:
            continue
        if not all(matcher.matches(target) for matcher in source.inhibits.matchers):
            continue
        if all(source.labels.get(name, "") == target.get(name, "") for name in source.inhibits.equal):
            return source
    return None


def sources(
    rules: Mapping[str, Inhibits | None], firing: Iterable[tuple[str, Mapping[str, str]]]
) -> list[Source]:
    """Sources from ``(rule, labels)`` of firing instances, for the rules that inhibit."""
    found = []
    for rule, labels in firing:
        inhibits = rules.get(rule)
        if inhibits is not None:
            found.append(Source(rule, {"rule": rule, **labels}, inhibits))
    return found
