"""Rule notifications out of the notification log: grouped, silenced, sent once.

The glue between the rules and delivery. Messages are rows written in the same transaction as the state
they describe (``store.log_messages``). ``drain`` decides, per notification group whose timers allow it,
what each pending row becomes (sent, silenced, inhibited, unannounced, dropped) with a conditional
UPDATE (``WHERE id = :id AND status = 'pending'``, so two servers never both take a row), and in the
same transaction writes the rows to be sent as one ``rule_messages`` row: the message, durable before
anything is sent. Those rows are delivered by the server's notice outbox (``opswatch.server.outbox``)
with a leased claim (``limits.RULE_MESSAGE_LEASE_SECONDS``), as issue notices are: a message is marked
done only when the notifier's delivery reached a final state, so a server killed mid-send sends it again
after the lease (its restart, or another server), and a message delivered before a restart is never sent
again. Delivery is the server's ``alerts.delivery.Notifier`` (Slack, signed webhook, email) with route
``rules`` and the rule's ``channels``.

Grouping, the Alertmanager model: rows share a group (``store.group_key``: the rule and its
``group_notifications_by`` labels). A group with nothing sent recently waits ``group_wait`` after its first
row, so alerts that start together go out as one message; after a send, the group's next message waits
until ``group_interval`` has passed. ``follow_up`` adds a ``repeat`` row for an incident still firing
``repeat_interval`` after it was last announced, and a ``firing`` row for one whose announcement was
silenced or inhibited once nothing mutes it any more (``inhibit``: a firing rule with ``inhibits``
mutes the alerts it names); for the notice rules, whose outboxes send their messages, it hands a muted
message back to its outbox instead (``outbox_release``). A resolve is sent only for an incident whose
firing was sent.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import quote

from sqlalchemy import Connection, Engine, and_, delete, insert, select, update

from ...log import get_logger
from .. import limits
from ..outbox import AlertSender, NoticeSender, NoticeTable, claimable
from ..state import rule_definitions
from ..state.rule_definitions import MESSAGES
from ..state.rules import GROUPS, INSTANCES, NOTIFICATIONS
from . import inhibit, outbox_release
from .messages import FIRING_KINDS, Note, render
from .model import Rule, instance_key
from .silences import Silence, Silences, muting
from .store import group_key, key_hash

_log = get_logger("opswatch.server.rules")

#: The notifier route of rule messages.
ROUTE: Final = "rules"
#: Pending rows read per round.
BATCH: Final = 500
#: Outbox decisions kept in memory until the next drain writes them (beyond it, the oldest are dropped).
OUTBOX_LOG_MAX: Final = 10_000


@dataclasses.dataclass(frozen=True)
class Timing:
    """The grouping timers, in seconds."""

    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 14_400.0


@dataclasses.dataclass(frozen=True)
class Mutes:
    """What mutes notifications this round: active silences and inhibiting firing instances."""

    silences: list[Silence]
    sources: list[inhibit.Source]


@dataclasses.dataclass(frozen=True)
class DrainReport:
    """One round: messages handed to the notifier, rows put into messages, rows silenced, rows not sent
    (unannounced, no channel)."""

    messages: int = 0
    sent: int = 0
    silenced: int = 0
    skipped: int = 0


def _note(row: Any) -> Note:
    return Note(
        row.id, row.rule, row.kind, dict(row.labels or {}), row.at, row.severity, row.value,
        row.started_at, row.reason,
    )  # fmt: skip


def _saved(notes: list[Any]) -> list[Note]:
    """The notes a ``rule_messages`` row carries."""
    fields = {f.name for f in dataclasses.fields(Note)}
    return [Note(**{k: v for k, v in dict(note).items() if k in fields}) for note in notes]


def _match_labels(rule: str, labels: Mapping[str, Any]) -> dict[str, str]:
    return {"rule": rule, **{str(k): str(v) for k, v in labels.items()}}


def rule_channels(rule: Rule | None, notifier: Any) -> list[str] | None:
    """The channels of ``rule`` that ``notifier`` has (None: all of them; so too when it has none of
    them)."""
    known = getattr(notifier, "channels", None)
    if rule is not None and rule.channels and isinstance(known, Mapping):
        return [name for name in rule.channels if name in known] or None
    return None


class Dispatcher:
    """Sends what the notification log holds; ``drain`` and ``follow_up`` are called by the rule clock."""

    def __init__(
        self,
        engine: Engine,
        notifier: AlertSender | None,
        rules: Callable[[], Mapping[str, Rule]],
        *,
        timing: Timing | None = None,
        base_url: str = "",
    ) -> None:
        self.engine = engine
        self.notifier = notifier
        self.rules = rules
        self.timing = timing or Timing()
        self.base_url = base_url.rstrip("/")
        self.silences = Silences(engine)
        self._failing = 0
        self._gate_log: list[dict[str, Any]] = []
        self._gate_log_lock = threading.Lock()
        rule_definitions.install(engine)  # the rule_messages outbox table
        table = NoticeTable(
            MESSAGES, self._build, lease=limits.RULE_MESSAGE_LEASE_SECONDS, channels=self._channels
        )
        self._outbox = NoticeSender(engine, table, notifier)

    @property
    def notifier(self) -> AlertSender | None:
        """The notifier messages are handed to (None: no channel is configured)."""
        return self._notifier

    @notifier.setter
    def notifier(self, notifier: AlertSender | None) -> None:
        self._notifier = notifier
        if hasattr(self, "_outbox"):
            self._outbox.notifier = notifier

    def link(self, rule: str, labels: Mapping[str, Any] | None = None) -> str | None:
        """The rule's page on the dashboard; an issue rule's alert links to its issue's page."""
        if not self.base_url:
            return None
        issue = (labels or {}).get("issue_id")
        if issue is not None and str(issue).isdigit():
            return f"{self.base_url}/issues/{issue}"
        return f"{self.base_url}/alerts/{quote(rule, safe='')}"

    # -- sending ---------------------------------------------------------------------------------------

    def log_outbox(
        self,
        rule: Rule,
        labels: Mapping[str, str],
        status: str,
        at: float,
        silence_id: int | None = None,
        reason: str | None = None,
        kind: str = "firing",
    ) -> None:
        """Note what a notice outbox did with a message of ``rule`` (``sent``: handed to its notifier,
        ``silenced``, ``inhibited``, ``deferred``, ``unannounced``); the next ``drain`` writes it to the
        notification log as a ``kind`` row (``resolved`` for a recovery message), so the history
        shows it. Kept in memory meanwhile: the outbox asks inside its claim's transaction, where a
        write of ours would wait for it on SQLite. ``reason`` names the outbox row
        (``issue_notices#17``), so a held-back message can be released later."""
        row = {
            "rule": rule.name,
            "key_hash": key_hash(instance_key(labels)),
            "labels": dict(labels),
            "kind": kind,
            "severity": "critical",
            "value": 1.0,
            "started_at": at,
            "at": at,
            "reason": reason,
            "group_key": group_key(rule, labels),
            "created_at": at,
            "status": status,
            "notified_at": at,
            "silence_id": silence_id,
        }
        with self._gate_log_lock:
            self._gate_log = [*self._gate_log[-(OUTBOX_LOG_MAX - 1) :], row]

    def outbox_announced(self, rule: str, labels: Mapping[str, str]) -> bool:
        """Whether the last failure an outbox logged for ``rule`` and ``labels`` was announced (sent, or
        released to be sent): False when it was silenced, inhibited or deferred, True when none was
        logged."""
        key = key_hash(instance_key(labels))
        with self._gate_log_lock:
            for row in reversed(self._gate_log):
                if row["rule"] == rule and row["key_hash"] == key and row["kind"] == "firing":
                    return row["status"] not in outbox_release.HELD
        columns = NOTIFICATIONS.c
        found = select(columns.status).where(
            and_(columns.rule == rule, columns.key_hash == key, columns.kind == "firing")
        )
        with self.engine.connect() as conn:
            last = conn.execute(found.order_by(NOTIFICATIONS.c.id.desc()).limit(1)).first()
        return last is None or last.status not in outbox_release.HELD

    def _write_outbox(self) -> None:
        with self._gate_log_lock:
            rows, self._gate_log = self._gate_log, []
        if not rows:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(NOTIFICATIONS), rows)
        except Exception:
            with self._gate_log_lock:
                self._gate_log = [*rows, *self._gate_log][-OUTBOX_LOG_MAX:]
            raise

    def drain(self, now: float) -> DrainReport:
        """Send every group whose timers allow it; never raises (a failure waits for the next round)."""
        try:
            self._write_outbox()
            report = self._drain(now)
        except Exception as err:
            self._report("rule notifications could not be sent; will retry", err)
            return DrainReport()
        self._failing = 0
        return report

    def _report(self, message: str, err: Exception) -> None:
        """Log the first failure of a streak, then one per minute of rounds (the clock retries every
        second; the log should not)."""
        if self._failing % 60 == 0:
            _log.error(message, {"failed_rounds": self._failing + 1}, err)
        self._failing += 1

    def _drain(self, now: float) -> DrainReport:
        report = self._group(now)
        handed = self._outbox.drain(now)  # the messages just written, and any whose lease ran out
        return dataclasses.replace(report, messages=handed)

    def _group(self, now: float) -> DrainReport:
        """Turn the pending rows of every due group into ``rule_messages`` rows (or mute them)."""
        with self.engine.connect() as conn:
            rows = list(
                conn.execute(
                    select(NOTIFICATIONS)
                    .where(NOTIFICATIONS.c.status == "pending")
                    .order_by(NOTIFICATIONS.c.id)
                    .limit(BATCH)
                )
            )
            if not rows:
                return DrainReport()  # the common case, every second: one indexed look-up
            keys = {row.group_key for row in rows}
            found = conn.execute(select(GROUPS).where(GROUPS.c.group_key.in_(keys)))
            last_sent = {row.group_key: row.last_sent_at for row in found}
        groups: dict[str, list[Any]] = {}
        for row in rows:
            groups.setdefault(row.group_key, []).append(row)
        mutes = self._mutes(now)
        report = DrainReport()
        for key, members in groups.items():
            if now < self._due(members, last_sent.get(key)):
                continue
            done = self._flush(key, members, mutes, now)
            report = DrainReport(*(a + b for a, b in zip(dataclasses.astuple(report), done, strict=True)))
        return report

    def _due(self, members: list[Any], last_sent_at: float | None) -> float:
        """When the group may be sent."""
        first = float(min(row.created_at for row in members))
        idle = last_sent_at is None or first - last_sent_at > self.timing.group_interval
        if idle:
            return first + self.timing.group_wait
        assert last_sent_at is not None
        return float(last_sent_at) + self.timing.group_interval

    def mutes(self, now: float) -> Mutes:
        """What mutes notifications at ``now`` (the notice outboxes ask too: ``outbox_rules``)."""
        return self._mutes(now)

    def _mutes(self, now: float) -> Mutes:
        """The silences active at ``now`` and the firing instances that inhibit others."""
        rules = self.rules()
        inhibiting = {name: rule.inhibits for name, rule in rules.items() if rule.inhibits is not None}
        firing: list[tuple[str, dict[str, str]]] = []
        if inhibiting:
            query = select(INSTANCES.c.rule, INSTANCES.c.labels).where(
                and_(INSTANCES.c.status == "firing", INSTANCES.c.rule.in_(list(inhibiting)))
            )
            with self.engine.connect() as conn:
                firing = [(row.rule, dict(row.labels or {})) for row in conn.execute(query)]
        return Mutes(self.silences.active(now), inhibit.sources(inhibiting, firing))

    def _flush(self, key: str, members: list[Any], mutes: Mutes, now: float) -> tuple[int, int, int, int]:
        to_send: list[Any] = []
        silenced = skipped = 0
        with self.engine.begin() as conn:
            pending = NOTIFICATIONS.c.status == "pending"
            mine = claimable(conn, NOTIFICATIONS, [row.id for row in members], pending)
            for row in members:
                if row.id not in mine:
                    continue  # another server is sending it (PostgreSQL: locked, skipped), or sent it
                status, silence_id = self._verdict(conn, row, mutes)
                claimed = conn.execute(
                    update(NOTIFICATIONS)
                    .where(and_(NOTIFICATIONS.c.id == row.id, NOTIFICATIONS.c.status == "pending"))
                    .values(status=status, notified_at=now, silence_id=silence_id)
                ).rowcount
                if not claimed:
                    continue  # another server took it
                if status == "sent":
                    to_send.append(row)
                elif status == "silenced":
                    silenced += 1
                else:
                    skipped += 1
            if to_send:
                self._stamp_group(conn, key, now)
                notes = [dataclasses.asdict(_note(row)) for row in to_send]
                conn.execute(insert(MESSAGES).values(rule=to_send[0].rule, notes=notes, created_at=now))
        return int(bool(to_send)), len(to_send), silenced, skipped

    def _verdict(self, conn: Connection, row: Any, mutes: Mutes) -> tuple[str, int | None]:
        """``sent``, ``silenced`` (with its silence), ``inhibited``, ``unannounced`` (a resolve of an
        incident never announced) or ``dropped`` (no channel)."""
        silence = muting(mutes.silences, _match_labels(row.rule, row.labels or {}))
        if silence is not None:
            return "silenced", silence.id
        if row.kind != "error" and inhibit.inhibited(mutes.sources, row.rule, row.labels or {}) is not None:
            return "inhibited", None
        if row.kind == "resolved" and not self._announced(conn, row.rule, row.key_hash, row.started_at):
            return "unannounced", None
        if self.notifier is None:
            return "dropped", None
        return "sent", None

    def _announced(self, conn: Connection, rule: str, key: str, started_at: float | None) -> bool:
        found = conn.execute(
            select(NOTIFICATIONS.c.id)
            .where(
                and_(
                    NOTIFICATIONS.c.rule == rule,
                    NOTIFICATIONS.c.key_hash == key,
                    NOTIFICATIONS.c.started_at == started_at,
                    NOTIFICATIONS.c.kind.in_(FIRING_KINDS),
                    NOTIFICATIONS.c.status == "sent",
                )
            )
            .limit(1)
        ).first()
        return found is not None

    def _stamp_group(self, conn: Connection, key: str, now: float) -> None:
        if not conn.execute(
            update(GROUPS).where(GROUPS.c.group_key == key).values(last_sent_at=now)
        ).rowcount:
            conn.execute(insert(GROUPS).values(group_key=key, last_sent_at=now))

    def _build(self, row: Any) -> tuple[Any | None, str]:
        """The alert of a ``rule_messages`` row (the outbox's ``build``); a message about one issue links
        to the issue's page."""
        rule = self.rules().get(row.rule)
        notes = _saved(list(row.notes or []))
        issues = {str((note.labels or {}).get("issue_id")) for note in notes}
        labels = notes[0].labels if notes and len(issues) == 1 else None
        return render(notes, rule, self.link(row.rule, labels)), ROUTE

    def _channels(self, row: Any) -> list[str] | None:
        """The rule's channels that the notifier has (None: all of them)."""
        return rule_channels(self.rules().get(row.rule), self.notifier)

    def prune(self, cutoff: float) -> int:
        """Delete delivered messages written before ``cutoff`` (undelivered ones stay); how many went."""
        done = and_(MESSAGES.c.notified_at.is_not(None), MESSAGES.c.created_at < cutoff)
        with self.engine.begin() as conn:
            return int(conn.execute(delete(MESSAGES).where(done)).rowcount)

    # -- follow-ups -------------------------------------------------------------------------------------

    def follow_up(self, now: float) -> int:
        """Log repeats and re-announcements of firing incidents (see the module docstring); never raises."""
        try:
            return self._follow_up(now)
        except Exception as err:
            self._report("rule follow-ups failed; will retry", err)
            return 0

    def _follow_up(self, now: float) -> int:
        rules = self.rules()
        mutes = self._mutes(now)
        added = 0
        with self.engine.begin() as conn:
            firing = list(
                conn.execute(
                    select(INSTANCES).where(
                        and_(INSTANCES.c.status == "firing", INSTANCES.c.flapping.is_(False))
                    )
                )
            )
            for instance in firing:
                rule = rules.get(instance.rule)
                if rule is None or rule.outbox:
                    continue
                kind = self._follow_up_kind(conn, instance, mutes, now)
                if kind is None:
                    continue
                labels = dict(instance.labels or {})
                conn.execute(
                    insert(NOTIFICATIONS).values(
                        rule=instance.rule,
                        key_hash=instance.key_hash,
                        labels=labels,
                        kind=kind,
                        severity=instance.severity,
                        value=instance.value,
                        started_at=instance.firing_since,
                        at=now,
                        reason=None,
                        group_key=group_key(rule, labels),
                        created_at=now,
                        status="pending",
                    )
                )
                added += 1
        return added + outbox_release.release(self.engine, rules, mutes.silences, mutes.sources, now)

    def _follow_up_kind(self, conn: Connection, instance: Any, mutes: Mutes, now: float) -> str | None:
        rows = list(
            conn.execute(
                select(NOTIFICATIONS.c.status, NOTIFICATIONS.c.notified_at)
                .where(
                    and_(
                        NOTIFICATIONS.c.rule == instance.rule,
                        NOTIFICATIONS.c.key_hash == instance.key_hash,
                        NOTIFICATIONS.c.started_at == instance.firing_since,
                        NOTIFICATIONS.c.kind.in_(FIRING_KINDS),
                    )
                )
                .order_by(NOTIFICATIONS.c.id.desc())
            )
        )
        if any(row.status == "pending" for row in rows):
            return None
        sent = [row.notified_at for row in rows if row.status == "sent" and row.notified_at is not None]
        if sent:
            return "repeat" if now - max(sent) >= self.timing.repeat_interval else None
        if not rows or any(row.status not in ("silenced", "inhibited") for row in rows):
            return None  # never logged (flapping when it fired: ``stable`` says it), or nowhere to send
        labels = dict(instance.labels or {})
        if muting(mutes.silences, _match_labels(instance.rule, labels)) is not None:
            return None
        if inhibit.inhibited(mutes.sources, instance.rule, labels) is not None:
            return None
        return "firing"
