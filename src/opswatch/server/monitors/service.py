"""The monitor service: every monitor in memory, a deadline index for the clock, durable writes.

One ``MonitorService`` per server process. It keeps an ``Entry`` per monitor and a heap of deadlines
(the next time the clock must look at a monitor: slot + margin, or run start + max runtime), so a clock
tick pops only the monitors that are due and costs nothing for the rest, however many there are.

Every decision is made by the pure engine (``engine``) and saved by ``persist.write`` in one transaction
with a conditional UPDATE per monitor; when another worker changed a monitor meanwhile, the service
reloads it and decides again, so a change is applied and announced once. State changes are written to
``monitor_changes`` in the same transaction, and ``outbox`` later copies them to the event store and
sends the notifications they call for.

Thread safety: one lock guards memory and writes. Check-ins arrive from the ingest committer thread
(``ctx.hooks``), ticks from the clock thread, management calls from API threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from ...log import get_logger
from ..state import monitors as tables
from . import config as monitor_config
from . import engine as rules_engine
from . import persist
from .checkins import BadCheckIn, Incoming, from_record
from .engine import Change, Outcome
from .errors import AmbiguousMonitor, MonitorConfigError, MonitorExists, UnknownMonitor
from .index import MonitorIndex
from .persist import Entry, Pending
from .rejections import Rejection, RejectionLog
from .run_errors import RunErrors, note_run

_log = get_logger("opswatch.server.monitors")
_MONITORS = tables.MONITORS

#: Due monitors judged and written per transaction (and per hold of the lock) by a tick.
TICK_CHUNK = 1_000
#: Attempts at a conditional write before giving up on a monitor for this round.
MAX_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True, slots=True)
class CheckInResult:
    """What happened to one check-in: the monitor's status after it, or why it was ignored."""

    slug: str
    status: str
    created: bool = False
    ignored: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class TickReport:
    """One clock tick: monitors due, state changes written, seconds spent; ``more`` when the tick's
    budget ran out with monitors still due."""

    due: int
    changes: int
    elapsed: float
    more: bool = False


class MonitorService:
    """Monitors of every project; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        now: Callable[[], float] = time.time,
        notifications: bool = False,
        retention_days: int = 30,
    ) -> None:
        self.engine = engine
        self.now = now
        #: Run history and stored state changes older than this are pruned (``prune``).
        self.retention_days = retention_days
        #: When True, failing episodes and their recoveries are marked for notification.
        self.notifications = notifications
        #: Called (outside the request's critical work) when check-ins produced state changes, so the
        #: clock can drain the outbox at once instead of at its next tick.
        self.on_change: Callable[[], None] | None = None
        self.counters: dict[str, int] = {"checkins": 0, "ignored": 0, "rejected": 0, "conflicts": 0}
        self._lock = threading.RLock()
        self._index = MonitorIndex()
        self._rejections = RejectionLog()
        #: Recent errors that name a run or a trace, for the failing message (see ``run_errors``).
        self.run_errors = RunErrors()
        tables.install(engine)
        self.reload()

    # -- memory --------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read every monitor from the state store (at start; after an error)."""
        index = MonitorIndex(persist.load_all(self.engine))
        with self._lock:
            self._index = index

    def refresh(self) -> int:
        """Bring memory up to date with the monitors other servers sharing the state store created,
        changed or deleted (replicas: ``opswatch.server.leader`` calls it every few seconds); returns how
        many entries were reloaded or dropped. One light query (every monitor's id and version) plus one
        read per monitor that changed."""
        with self._lock:
            with self.engine.connect() as conn:
                rows = conn.execute(select(_MONITORS.c.id, _MONITORS.c.version))
                stored = {row.id: row.version for row in rows}
            changed = 0
            for entry in self._index.all():
                if entry.id not in stored:
                    self._index.remove(entry)
                    changed += 1
            for monitor_id, version in stored.items():
                known = self._index.get(monitor_id)
                if known is None or known.version != version:
                    self._reload_entry(monitor_id)
                    changed += 1
        return changed

    def _load_missing(self, slug: str, project_id: int | None, conn: Any = None) -> list[Entry]:
        """Monitors ``slug`` (of ``project_id``, if given) that the state store has and memory lacks,
        loaded into memory: another server sharing the store created them since the last ``refresh``.
        Called with the lock held; ``conn`` reads inside the caller's transaction."""
        query = select(_MONITORS.c.id).where(_MONITORS.c.slug == slug)
        if project_id is not None:
            query = query.where(_MONITORS.c.project_id == project_id)
        found: list[Entry] = []
        with contextlib.ExitStack() as stack:
            reader = conn if conn is not None else stack.enter_context(self.engine.connect())
            for monitor_id in list(reader.execute(query).scalars()):
                if self._index.get(monitor_id) is not None:
                    continue
                entry = persist.load_one(reader, monitor_id)
                if entry is not None:
                    self._index.add(entry)
                    found.append(entry)
        return found

    def __len__(self) -> int:
        return len(self._index)

    def _reload_entry(self, monitor_id: int) -> Entry | None:
        with self.engine.connect() as conn:
            fresh = persist.load_one(conn, monitor_id)
        old = self._index.get(monitor_id)
        if old is not None:
            self._index.remove(old)
        if fresh is not None:
            self._index.add(fresh)
        return fresh

    # -- lookups -------------------------------------------------------------------------------------

    def find(self, slug: str, project_id: int | None = None) -> Entry:
        """The monitor ``slug`` (in ``project_id`` if given); raises UnknownMonitor or AmbiguousMonitor."""
        with self._lock:
            if project_id is not None:
                entry = self._index.find(project_id, slug) or next(
                    iter(self._load_missing(slug, project_id)), None
                )
                if entry is None:
                    raise UnknownMonitor(f"no monitor {slug!r} in project {project_id}")
                return entry
            matches = self._index.with_slug(slug) or self._load_missing(slug, None)
        if not matches:
            raise UnknownMonitor(f"no monitor {slug!r}")
        if len(matches) > 1:
            projects = ", ".join(str(m.project_id) for m in matches)
            raise AmbiguousMonitor(f"monitor {slug!r} exists in projects {projects}; say which project")
        return matches[0]

    def entries(self, project_id: int | None = None, status: str | None = None) -> list[Entry]:
        """Monitors sorted by project and slug, optionally filtered."""
        with self._lock:
            chosen = [
                e
                for e in self._index.all()
                if (project_id is None or e.project_id == project_id)
                and (status is None or e.state.status == status)
            ]
        return sorted(chosen, key=lambda e: (e.project_id, e.slug))

    def rejections(self) -> list[Rejection]:
        """Recent check-ins refused (unknown monitor without configuration, bad configuration ...)."""
        with self._lock:
            return self._rejections.items()

    def next_deadline(self) -> float | None:
        """The earliest time any monitor is due (a stale, earlier time at worst)."""
        with self._lock:
            return self._index.earliest()

    # -- check-ins -----------------------------------------------------------------------------------

    def hook(self, _ctx: object, records: Sequence[Mapping[str, Any]]) -> int:
        """``ctx.hooks`` entry: note run errors and apply the ``check_in`` records among newly stored
        records. Never raises; returns how many records could not be processed (the pipeline counts
        them): the check-ins that could not be applied, or the whole batch when its run errors could
        not be noted."""
        failed = 0
        try:
            self.run_errors.remember(records, self.now())
        except Exception as err:
            _log.error("cron run errors could not be noted", {"events": len(records)}, err)
            failed = len(records)
        checkins = [r for r in records if r.get("kind") == "check_in"]
        if checkins:
            try:
                self.process(checkins)
            except Exception as err:
                _log.error("cron check-ins could not be applied", {"events": len(checkins)}, err)
                return max(failed, len(checkins))
        return failed

    def refusal(self, project_id: int, record: Mapping[str, Any]) -> str | None:
        """Why a check-in record would be refused, checked in memory before it is stored; else None.

        For ingest handlers that can answer the sender (pings: 404 with the reason, as Healthchecks
        does): an unreadable check-in, an unknown monitor without a configuration to create it from,
        or a configuration that is wrong. Records that pass may still be refused later for a reason
        that only shows when they are applied (another server deleted the monitor meanwhile).
        """
        try:
            incoming = from_record({**record, "project_id": project_id})
            sent = monitor_config.normalize(incoming.config, strict=False) if incoming.config else None
        except (BadCheckIn, MonitorConfigError) as err:
            return str(err)
        with self._lock:
            known = self._index.find(project_id, incoming.slug) is not None
            known = known or bool(self._load_missing(incoming.slug, project_id))
        if not known and not (sent and "schedule" in sent):
            return (
                f"no monitor {incoming.slug!r} in project {project_id}: send monitor_config with a "
                "schedule, or create it first (opswatch crons create)"
            )
        return None

    def process(self, records: Sequence[Mapping[str, Any]], now: float | None = None) -> list[str | None]:
        """Apply ``check_in`` records in order; per record ``None`` or the reason it was refused."""
        incoming: list[Incoming | None] = []
        reasons: list[str | None] = []
        for record in records:
            try:
                incoming.append(from_record(record))
                reasons.append(None)
            except BadCheckIn as err:
                incoming.append(None)
                reasons.append(str(err))
                slug = record.get("monitor_slug")
                self._reject(int(record.get("project_id") or 0), str(slug or "?"), str(err))
        valid = [(i, item) for i, item in enumerate(incoming) if item is not None]
        results = self.apply([item for _, item in valid], now)
        for (index, _item), result in zip(valid, results, strict=True):
            if isinstance(result, Exception):
                reasons[index] = str(result)
        return reasons

    def checkin(self, incoming: Incoming, now: float | None = None) -> CheckInResult:
        """Apply one check-in; raises ``UnknownMonitor`` or ``MonitorConfigError`` with a reason."""
        [result] = self.apply([incoming], now)
        if isinstance(result, Exception):
            raise result
        return result

    def apply(
        self, batch: Sequence[Incoming], now: float | None = None
    ) -> list[CheckInResult | UnknownMonitor | MonitorConfigError]:
        """Apply check-ins in order, writing them in one transaction; per item a result or the error."""
        when = self.now() if now is None else now
        results: list[CheckInResult | UnknownMonitor | MonitorConfigError] = []
        with self._lock:
            for _attempt in range(MAX_ATTEMPTS):
                results = []
                pending: dict[int, Pending] = {}
                touched: list[int] = []
                try:
                    with self.engine.begin() as conn:
                        self._recall_runs(conn, batch)
                        for item in batch:
                            results.append(self._apply_one(conn, item, when, pending, touched))
                        if persist.write(conn, list(pending.values()), when):
                            break
                        conn.rollback()
                except Exception:
                    for monitor_id in touched:
                        self._reload_entry(monitor_id)
                    raise
                self.counters["conflicts"] += 1
                for monitor_id in touched:
                    self._reload_entry(monitor_id)
            else:
                raise RuntimeError("monitor state kept changing under this server; check-ins not applied")
            changed = False
            for written in pending.values():
                self._index.schedule(written.entry)
                changed = changed or any(row["notify"] for row in written.changes)
        if changed and self.on_change is not None:
            self.on_change()
        return results

    def _apply_one(
        self, conn: Any, item: Incoming, now: float, pending: dict[int, Pending], touched: list[int]
    ) -> CheckInResult | UnknownMonitor | MonitorConfigError:
        key = (item.project_id, item.slug)
        existing = self._index.find(*key)
        if existing is None:  # created by another server sharing the state store?
            existing = next(iter(self._load_missing(item.slug, item.project_id, conn)), None)
        created = False
        sent: dict[str, Any] | None = None
        try:
            sent = monitor_config.normalize(item.config, strict=False) if item.config else None
            if existing is None:
                if not sent or "schedule" not in sent:
                    raise UnknownMonitor(
                        f"no monitor {item.slug!r} in project {item.project_id}: send monitor_config with a "
                        "schedule, or create it first (opswatch crons create)"
                    )
                monitor_config.check_slug(item.slug)
                entry = persist.insert_entry(conn, item.project_id, item.slug, sent, now)
                self._index.add(entry)
                created = True
                pending[entry.id] = Pending(entry, [], [self._note(entry, "created", now, {"config": sent})])
            else:
                entry = existing
        except (UnknownMonitor, MonitorConfigError) as err:
            self._reject(item.project_id, item.slug, str(err))
            return err
        if sent and not created:
            try:
                self._reconfigure(entry, sent, now, pending)
            except MonitorConfigError as err:  # the run still counts; only the new settings are refused
                self._reject(item.project_id, item.slug, f"monitor_config ignored: {err}")
        touched.append(entry.id)
        outcome = rules_engine.checkin(entry.rules, entry.state, item.checkin, now)
        for change in outcome.changes:
            if change.kind == "failing":
                run = next((r for r in outcome.runs if r.key == change.details.get("run_id")), None)
                note_run(self.run_errors, item.project_id, change.details, run, item)
        self._collect(entry, outcome, now, pending)
        self.counters["checkins"] += 1
        if outcome.ignored:
            self.counters["ignored"] += 1
        return CheckInResult(item.slug, entry.state.status, created, outcome.ignored)

    def _recall_runs(self, conn: Any, batch: Sequence[Incoming]) -> None:
        """Bring back from the database the finished runs the batch names and memory forgot (so a
        duplicate is recognised after a restart); one query for the whole batch."""
        wanted: list[tuple[int, str]] = []
        for item in batch:
            run_id = item.checkin.run_id
            entry = self._index.find(item.project_id, item.slug)
            if run_id is None or entry is None:
                continue
            state = entry.state
            if run_id not in state.open_runs and run_id not in state.recent_runs:
                wanted.append((entry.id, run_id))
        if not wanted:
            return
        for (monitor_id, _key), run in persist.find_runs(conn, wanted).items():
            found = self._index.get(monitor_id)
            if found is not None and run.status != "in_progress":
                found.state.remember(run)

    def _reconfigure(
        self, entry: Entry, sent: dict[str, Any], now: float, pending: dict[int, Pending]
    ) -> None:
        merged = monitor_config.merge(entry.config, sent)
        if merged == entry.config:
            return
        old_rules = entry.rules
        entry.config = merged
        entry.rules = monitor_config.rules_for(merged)
        if (old_rules.slots is not entry.rules.slots) and not entry.state.paused:
            rules_engine.rebase(entry.rules, entry.state, now)
        item = pending.setdefault(entry.id, Pending(entry, [], []))
        item.config_changed = True
        item.changes.append(self._note(entry, "updated", now, {"config": sent}))

    def _reject(self, project_id: int, slug: str, reason: str) -> None:
        self.counters["rejected"] += 1
        self._rejections.add(project_id, slug, reason, self.now())

    # -- the clock -----------------------------------------------------------------------------------

    def tick(self, now: float | None = None, budget: float | None = None) -> TickReport:
        """Judge the monitors due at ``now``: misses and timeouts, written durably.

        Works in chunks of ``TICK_CHUNK`` monitors, releasing the lock between chunks so check-ins are
        not held up. With a ``budget`` (seconds) it stops after the chunk that exhausts it and reports
        ``more``: the rest stay due and the next tick takes them (a miss is dated at its slot, whenever
        it is noticed). Without one it works until nothing is due.
        """
        started = time.perf_counter()
        when = self.now() if now is None else now
        due_total = changes = 0
        more = False
        while True:
            with self._lock:
                due = self._index.pop_due(when, TICK_CHUNK)
                if not due:
                    break
                changes += self._judge(due, when)
            due_total += len(due)
            if budget is not None and time.perf_counter() - started >= budget:
                with self._lock:
                    earliest = self._index.earliest()
                    more = earliest is not None and earliest <= when
                break
        return TickReport(due_total, changes, time.perf_counter() - started, more)

    def _judge(self, due: list[Entry], when: float) -> int:
        """Run the engine on due entries and write what it decided; returns the number of changes."""
        batch: list[Pending] = []
        for entry in due:
            outcome = rules_engine.tick(entry.rules, entry.state, when)
            if outcome.changes or outcome.runs:
                item = Pending(entry, [], [])
                self._collect(entry, outcome, when, {entry.id: item})
                batch.append(item)
        try:
            changes = self._write_tick(batch, when)
        except Exception as err:  # keep memory equal to what is stored, and keep ticking
            _log.error("the cron clock could not save a tick", {"monitors": len(batch)}, err)
            for item in batch:
                self._reload_entry(item.entry.id)
            changes = 0
        for entry in due:
            if self._index.holds(entry):
                self._index.schedule(entry)
        return changes

    def _write_tick(self, batch: list[Pending], now: float) -> int:
        """Write a tick's decisions; returns the number of state changes written."""
        if not batch:
            return 0
        with self.engine.begin() as conn:
            if persist.write(conn, batch, now):
                return sum(len(item.changes) for item in batch)
            conn.rollback()
        # Someone else changed some of these monitors: reload them all and decide again one by one.
        self.counters["conflicts"] += 1
        written = 0
        for item in batch:
            fresh = self._reload_entry(item.entry.id)
            if fresh is None:
                continue
            for _attempt in range(MAX_ATTEMPTS):
                outcome = rules_engine.tick(fresh.rules, fresh.state, now)
                if not (outcome.changes or outcome.runs):
                    break
                single = Pending(fresh, [], [])
                self._collect(fresh, outcome, now, {fresh.id: single})
                with self.engine.begin() as conn:
                    if persist.write(conn, [single], now):
                        written += len(single.changes)
                        self._index.schedule(fresh)
                        break
                    conn.rollback()
                fresh = self._reload_entry(item.entry.id)
                if fresh is None:
                    break
        return written

    # -- recording changes ---------------------------------------------------------------------------

    def _collect(self, entry: Entry, outcome: Outcome, now: float, pending: dict[int, Pending]) -> None:
        """Add the engine's runs and changes to the entry's pending write, deciding notifications."""
        item = pending.setdefault(entry.id, Pending(entry, [], []))
        item.runs.extend(outcome.runs)
        for change in outcome.changes:
            notify: str | None = None
            if change.kind == "failing" and self.notifications:
                notify, entry.announced = "failing", True
            elif change.kind == "recovered" and entry.announced:
                notify, entry.announced = "recovered", False
            item.changes.append(persist.change_row(entry, change, now, notify))

    def _note(self, entry: Entry, kind: str, now: float, details: dict[str, Any]) -> dict[str, Any]:
        return persist.change_row(entry, Change(kind, now, details), now, None)

    # -- management ----------------------------------------------------------------------------------

    def create(self, project_id: int, slug: str, settings: Mapping[str, Any]) -> Entry:
        """Create a monitor; ``MonitorExists``, or ``MonitorConfigError`` naming the bad setting."""
        monitor_config.check_slug(slug)
        config = monitor_config.merge({}, monitor_config.normalize(settings))
        now = self.now()
        with self._lock:
            if self._index.find(project_id, slug) is not None:
                raise MonitorExists(f"monitor {slug!r} exists already in project {project_id}")
            try:
                with self.engine.begin() as conn:
                    entry = persist.insert_entry(conn, project_id, slug, config, now)
                    note = self._note(entry, "created", now, {"config": config})
                    conn.execute(tables.CHANGES.insert(), [note])
            except IntegrityError:
                raise MonitorExists(f"monitor {slug!r} exists already in project {project_id}") from None
            self._index.add(entry)
            self._rejections.forget(project_id, slug)
        return entry

    def update(self, entry: Entry, settings: Mapping[str, Any]) -> Entry:
        """Change only the settings given; the next slot is recounted when the schedule changed."""
        sent = monitor_config.normalize(settings)
        return self._mutate(entry, lambda e, now, p: self._reconfigure(e, sent, now, p))

    def pause(self, entry: Entry) -> Entry:
        """Stop judging the monitor (check-ins are still recorded)."""

        def change(e: Entry, now: float, pending: dict[int, Pending]) -> None:
            if not e.state.paused:
                rules_engine.pause(e.state)
                pending.setdefault(e.id, Pending(e, [], [])).changes.append(self._note(e, "paused", now, {}))

        return self._mutate(entry, change)

    def resume(self, entry: Entry) -> Entry:
        """Judge the monitor again, counting from now."""

        def change(e: Entry, now: float, pending: dict[int, Pending]) -> None:
            if e.state.paused:
                outcome = rules_engine.resume(e.rules, e.state, now)
                item = pending.setdefault(e.id, Pending(e, [], []))
                item.runs.extend(outcome.runs)
                item.changes.append(self._note(e, "resumed", now, {}))

        return self._mutate(entry, change)

    def delete(self, entry: Entry) -> None:
        """Delete the monitor and its runs; a ``deleted`` change is kept."""
        now = self.now()
        with self._lock:
            with self.engine.begin() as conn:
                monitor_table = tables.MONITORS
                runs = tables.RUNS
                conn.execute(delete(runs).where(runs.c.monitor_id == entry.id))
                gone = conn.execute(delete(monitor_table).where(monitor_table.c.id == entry.id)).rowcount
                if gone:
                    note = self._note(entry, "deleted", now, {})
                    conn.execute(tables.CHANGES.insert(), [note])
            self._index.remove(entry)

    def _mutate(self, entry: Entry, change: Callable[[Entry, float, dict[int, Pending]], None]) -> Entry:
        now = self.now()
        with self._lock:
            current: Entry | None = self._index.get(entry.id)
            for _attempt in range(MAX_ATTEMPTS):
                if current is None:
                    raise UnknownMonitor(f"monitor {entry.slug!r} was deleted")
                pending: dict[int, Pending] = {}
                outcome = rules_engine.tick(current.rules, current.state, now)
                self._collect(current, outcome, now, pending)
                try:
                    change(current, now, pending)
                except MonitorConfigError:
                    current = self._reload_entry(current.id)
                    raise
                with self.engine.begin() as conn:
                    if persist.write(conn, list(pending.values()) or [Pending(current, [], [])], now):
                        self._index.schedule(current)
                        return current
                    conn.rollback()
                current = self._reload_entry(entry.id)
            raise RuntimeError(f"monitor {entry.slug!r} kept changing; try again")

    # -- history -------------------------------------------------------------------------------------

    def prune(self, now: float | None = None) -> int:
        """Delete finished runs and delivered state changes older than ``retention_days``; returns how
        many rows went. Runs still in progress and changes not yet stored or announced are kept."""
        before = (self.now() if now is None else now) - self.retention_days * 86400
        return persist.prune(self.engine, before)

    def runs(self, entry: Entry, limit: int = 50) -> list[Any]:
        """The monitor's latest runs, newest first."""
        return persist.recent_runs(self.engine, entry.id, limit)

    def changes(self, entry: Entry, limit: int = 50) -> list[Any]:
        """The monitor's latest state changes, newest first."""
        return persist.recent_changes(self.engine, entry.id, limit)
