"""Rule state in the state store: read a rule's instances, write one evaluation's outcome atomically.

``save`` writes the changed instances, the rule's status and the messages of one evaluation in one
transaction. An instance row is written when its state changes, not for every new reading (the
latest readings are kept in memory by the service, for the API). Instance rows are updated only
``WHERE version = :read_version`` (and created under a unique constraint), so when two servers
evaluate the same rule at once one of them writes and the other finds a conflict and rolls back
everything, its messages included: a notification is logged once.

A round reads every rule's instances and status in two queries (``snapshot``). A rule whose outcome
changes nothing durable (``changes_nothing``: no message, no instance state change, the same error
episode) is not saved on its own: the round moves all such rules' ``last_eval_at`` together
(``touch``: one transaction, a statement per 500 rules). Such a rule writes no instance row, so it
cannot conflict; the status row never had a version check (the last writer's evaluation time wins),
so the batched write keeps that guarantee.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
from collections.abc import Iterable, Mapping
from typing import Any, Final

from sqlalchemy import Connection, Engine, Text, and_, bindparam, cast, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..state.rules import INSTANCES, NOTIFICATIONS, STATUS
from .evaluate import Outcome
from .machine import Instance, Message, RuleStatus
from .model import Rule

#: Rules per ``touch`` statement (SQLite's bound-parameter limit is far above this).
_TOUCH_CHUNK: Final = 500
#: Decoded JSON texts ``snapshot`` keeps between rounds (an instance's labels rarely change); past this
#: many, it starts afresh.
_DECODED_MAX: Final = 100_000


class Conflict(Exception):
    """Another writer changed an instance since it was read; the whole outcome was rolled back."""


def key_hash(key: str) -> str:
    """The short, indexable form of an instance key."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def group_key(rule: Rule, labels: Mapping[str, str]) -> str:
    """The notification group of an instance: the rule plus its ``group_notifications_by`` labels."""
    return labels_group_key(rule.name, labels, rule.group_notifications_by)


def labels_group_key(rule: str, labels: Mapping[str, str], names: tuple[str, ...] | None) -> str:
    """The group of ``rule``'s instance with ``labels``, grouped by ``names`` (None: all labels)."""
    chosen = dict(labels) if names is None else {name: labels.get(name, "") for name in names}
    chosen["rule"] = rule
    return key_hash(json.dumps(dict(sorted(chosen.items())), ensure_ascii=False))


def instance_from_row(row: Any) -> Instance:
    """An ``Instance`` from a ``rule_instances`` row."""
    return Instance(
        key=row.key,
        labels=dict(row.labels or {}),
        status=row.status,
        severity=row.severity,
        health=row.health,
        value=row.value,
        events=row.events,
        pending_since=row.pending_since,
        firing_since=row.firing_since,
        last_breach_at=row.last_breach_at,
        clear_since=row.clear_since,
        resolved_at=row.resolved_at,
        last_eval_at=row.last_eval_at,
        transitions=tuple(row.transitions or ()),
        flapping=bool(row.flapping),
        version=row.version,
    )


def _columns(instance: Instance) -> dict[str, Any]:
    return {
        "labels": dict(instance.labels),
        "status": instance.status,
        "severity": instance.severity,
        "health": instance.health,
        "value": instance.value,
        "events": instance.events,
        "pending_since": instance.pending_since,
        "firing_since": instance.firing_since,
        "last_breach_at": instance.last_breach_at,
        "clear_since": instance.clear_since,
        "resolved_at": instance.resolved_at,
        "last_eval_at": instance.last_eval_at,
        "transitions": list(instance.transitions),
        "flapping": instance.flapping,
    }


#: Columns that change with every reading; a row is written only when something else changes (a state
#: transition), so a steady rule costs one status row per round, not one write per instance.
_READING: Final = frozenset({"value", "events", "last_eval_at", "last_breach_at"})


#: The durable columns of an instance, read straight off it (``changes_nothing`` runs for every instance).
_durable_of: Final = operator.attrgetter(
    *(name for name in _columns(Instance(key="", labels={})) if name not in _READING)
)


#: ``rule_instances`` as ``snapshot`` reads it: the rule, then ``Instance``'s fields in their order, the
#: JSON ones as their text.
_SNAPSHOT_FIELDS: Final = (
    "key", "labels", "status", "severity", "health", "value", "events", "pending_since", "firing_since",
    "last_breach_at", "clear_since", "resolved_at", "last_eval_at", "transitions", "flapping", "version",
)  # fmt: skip
_SNAPSHOT: Final = select(
    INSTANCES.c.rule,
    *(
        cast(INSTANCES.c[n], Text) if n in ("labels", "transitions") else INSTANCES.c[n]
        for n in _SNAPSHOT_FIELDS
    ),
)


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def status_from_row(row: Any) -> RuleStatus:
    """A ``RuleStatus`` from a ``rule_status`` row."""
    waiting = tuple(row.waiting or ())
    return RuleStatus(row.last_eval_at, row.error, row.error_since, bool(row.expected), waiting)


def changes_nothing(outcome: Outcome, read: Mapping[str, Instance], stored: RuleStatus | None) -> bool:
    """Whether saving ``outcome`` would write nothing but the status's ``last_eval_at``: no message, no
    new instance, no instance whose durable columns change, and a stored status equal but for the time."""
    if outcome.messages or stored is None:
        return False
    if dataclasses.replace(outcome.status, last_eval_at=None) != dataclasses.replace(
        stored, last_eval_at=None
    ):
        return False
    for instance in outcome.instances:
        before = read.get(instance.key)
        if before is None or _durable_of(instance) != _durable_of(before):
            return False
    return True


class RuleStore:
    """Reads and writes rule state on ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: JSON texts of labels and of transitions -> their values, for ``snapshot``
        self._labels: dict[str | None, dict[str, str]] = {}
        self._transitions: dict[str | None, tuple[float, ...]] = {}

    def instances(self, rule: str) -> dict[str, Instance]:
        """The stored instances of ``rule`` by key."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(INSTANCES).where(INSTANCES.c.rule == rule))
            return {row.key: instance_from_row(row) for row in rows}

    def all_instances(self, rule: str | None = None) -> list[tuple[str, Instance]]:
        """``(rule, instance)`` for every stored instance (of ``rule``), by rule then key."""
        query = select(INSTANCES).order_by(INSTANCES.c.rule, INSTANCES.c.key)
        if rule is not None:
            query = query.where(INSTANCES.c.rule == rule)
        with self.engine.connect() as conn:
            return [(row.rule, instance_from_row(row)) for row in conn.execute(query)]

    def status(self, rule: str) -> RuleStatus:
        """The rule's stored status (a fresh one when it was never evaluated)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(STATUS).where(STATUS.c.rule == rule)).first()
        return RuleStatus() if row is None else status_from_row(row)

    def snapshot(self) -> tuple[dict[str, dict[str, Instance]], dict[str, RuleStatus]]:
        """Every rule's stored instances (``rule -> key -> instance``) and stored status (only rules
        that have a status row), read in one transaction: what a round starts from.

        A round reads every instance, so the JSON columns are read as text and each text is decoded
        once (kept in ``_labels`` and ``_transitions``): the same labels come back round after round.
        """
        instances: dict[str, dict[str, Instance]] = {}
        if len(self._labels) + len(self._transitions) > _DECODED_MAX:
            self._labels.clear()
            self._transitions.clear()
        known_labels, known_transitions = self._labels, self._transitions
        with self.engine.connect() as conn:
            for row in conn.execute(_SNAPSHOT):
                (rule, key, labels_text, status, severity, health, value, events, pending_since,
                 firing_since, last_breach_at, clear_since, resolved_at, last_eval_at, transitions_text,
                 flapping, version) = row  # fmt: skip
                labels, transitions = known_labels.get(labels_text), known_transitions.get(transitions_text)
                if labels is None:
                    labels = known_labels[labels_text] = _json(labels_text) or {}
                if transitions is None:
                    transitions = known_transitions[transitions_text] = tuple(_json(transitions_text) or ())
                instances.setdefault(rule, {})[key] = Instance(
                    key, dict(labels), status, severity, health, value, events, pending_since, firing_since,
                    last_breach_at, clear_since, resolved_at, last_eval_at, transitions, bool(flapping),
                    version,
                )  # fmt: skip
            statuses = {row.rule: status_from_row(row) for row in conn.execute(select(STATUS))}
        return instances, statuses

    def touch(self, rules: Iterable[str], at: float) -> None:
        """Set the status's ``last_eval_at`` of ``rules`` (whose rows exist) to ``at``, in one transaction."""
        names = list(rules)
        if not names:
            return
        with self.engine.begin() as conn:
            for start in range(0, len(names), _TOUCH_CHUNK):
                chosen = names[start : start + _TOUCH_CHUNK]
                conn.execute(update(STATUS).where(STATUS.c.rule.in_(chosen)).values(last_eval_at=at))

    def save(self, rule: Rule, outcome: Outcome, read: Mapping[str, Instance], now: float) -> None:
        """Write ``outcome`` in one transaction; ``Conflict`` (nothing written) if another writer won."""
        try:
            with self.engine.begin() as conn:
                for instance in outcome.instances:
                    self._write_instance(conn, rule.name, instance, read.get(instance.key))
                self._write_status(conn, rule.name, outcome.status)
                log_messages(conn, rule, outcome.messages, now)
        except IntegrityError:
            raise Conflict(rule.name) from None

    def _write_instance(
        self, conn: Connection, rule: str, instance: Instance, before: Instance | None
    ) -> None:
        values = _columns(instance)
        if before is None:
            conn.execute(
                _INSERT_INSTANCE,
                {
                    "rule": rule,
                    "key": instance.key,
                    "key_hash": key_hash(instance.key),
                    "version": 1,
                    **values,
                },
            )
            return
        if _durable_of(instance) == _durable_of(before):
            return  # only the reading changed: kept in memory (``RuleService.readings``), not written
        done = conn.execute(
            _UPDATE_INSTANCE,
            {
                "at_rule": rule,
                "at_key_hash": key_hash(instance.key),
                "at_version": before.version,
                "version": before.version + 1,
                **values,
            },
        ).rowcount
        if not done:
            raise Conflict(rule)

    def _write_status(self, conn: Connection, rule: str, status: RuleStatus) -> None:
        values = {
            "last_eval_at": status.last_eval_at,
            "error": status.error,
            "error_since": status.error_since,
            "expected": status.expected,
            "waiting": list(status.waiting),
        }
        done = conn.execute(_UPDATE_STATUS, {"at_rule": rule, **values}).rowcount
        if not done:
            conn.execute(_INSERT_STATUS, {"rule": rule, **values})


#: The statements ``save`` runs, built once (SQLAlchemy then reuses their compiled form): an instance
#: row is updated only at the version it was read at (``at_version``).
_INSERT_INSTANCE: Final = insert(INSTANCES)
_UPDATE_INSTANCE: Final = (
    update(INSTANCES)
    .where(
        and_(
            INSTANCES.c.rule == bindparam("at_rule"),
            INSTANCES.c.key_hash == bindparam("at_key_hash"),
            INSTANCES.c.version == bindparam("at_version"),
        )
    )
    .values({name: bindparam(name) for name in [*_columns(Instance(key="", labels={})), "version"]})
)
_INSERT_STATUS: Final = insert(STATUS)
_UPDATE_STATUS: Final = (
    update(STATUS)
    .where(STATUS.c.rule == bindparam("at_rule"))
    .values(
        {name: bindparam(name) for name in ("last_eval_at", "error", "error_since", "expected", "waiting")}
    )
)


def log_messages(conn: Connection, rule: Rule, messages: Iterable[Message], now: float) -> None:
    """Append ``messages`` to the notification log (status ``pending``) inside ``conn``'s transaction."""
    rows = [
        {
            "rule": rule.name,
            "key_hash": key_hash(message.key),
            "labels": dict(message.labels),
            "kind": message.kind,
            "severity": message.severity,
            "value": message.value,
            "started_at": message.started_at,
            "at": message.at,
            "reason": message.reason,
            "group_key": group_key(rule, message.labels),
            "created_at": now,
            "status": "pending",
        }
        for message in messages
    ]
    if rows:
        conn.execute(insert(NOTIFICATIONS), rows)


def history(engine: Engine, rule: str | None = None, limit: int = 100) -> list[Any]:
    """The newest ``limit`` rows of the notification log (of ``rule``), newest first."""
    query = select(NOTIFICATIONS).order_by(NOTIFICATIONS.c.id.desc()).limit(limit)
    if rule is not None:
        query = query.where(NOTIFICATIONS.c.rule == rule)
    with engine.connect() as conn:
        return list(conn.execute(query))


def prune(engine: Engine, known: Iterable[str], cutoff: float) -> int:
    """Delete what no longer matters; return how many rows went: the state of rules that are no longer
    configured, inactive instances that have not breached since ``cutoff``, and sent (or muted)
    notifications logged before ``cutoff``. Pending notifications are never deleted."""
    names = list(known)
    deleted = 0
    with engine.begin() as conn:
        for table in (INSTANCES, STATUS):
            deleted += conn.execute(delete(table).where(table.c.rule.not_in(names))).rowcount
        stale = and_(
            INSTANCES.c.status == "inactive",
            INSTANCES.c.flapping.is_(False),
            or_(INSTANCES.c.last_breach_at.is_(None), INSTANCES.c.last_breach_at < cutoff),
            or_(INSTANCES.c.last_eval_at.is_(None), INSTANCES.c.last_eval_at < cutoff),
        )
        deleted += conn.execute(delete(INSTANCES).where(stale)).rowcount
        old = and_(NOTIFICATIONS.c.status != "pending", NOTIFICATIONS.c.created_at < cutoff)
        deleted += conn.execute(delete(NOTIFICATIONS).where(old)).rowcount
    return deleted


def retire(engine: Engine, known: Iterable[str], now: float) -> int:
    """Resolve the firing alerts of rules that are no longer configured (a resolved message saying
    so, like any resolve only sent if the firing was), then forget those rules' state. Returns how
    many alerts were resolved."""
    names = list(known)
    with engine.begin() as conn:
        gone = list(conn.execute(select(INSTANCES).where(INSTANCES.c.rule.not_in(names))))
        rows = [
            {
                "rule": row.rule,
                "key_hash": row.key_hash,
                "labels": dict(row.labels or {}),
                "kind": "resolved",
                "severity": row.severity,
                "value": row.value,
                "started_at": row.firing_since,
                "at": now,
                "reason": "the rule was removed",
                "group_key": labels_group_key(row.rule, row.labels or {}, None),
                "created_at": now,
                "status": "pending",
            }
            for row in gone
            if row.status == "firing"
        ]
        if rows:
            conn.execute(insert(NOTIFICATIONS), rows)
        for table in (INSTANCES, STATUS):
            conn.execute(delete(table).where(table.c.rule.not_in(names)))
    return len(rows)
