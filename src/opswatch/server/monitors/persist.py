"""Monitor state between memory and the state store, written with conditional UPDATEs.

An ``Entry`` is one monitor in memory: its row id, slug, configuration, the engine's rules and state,
and ``version``, the row version it was read at. ``write`` saves a batch of entries together with the
runs and state changes the engine produced for them, in one transaction, each monitor's row with
``UPDATE monitors ... WHERE id = :id AND version = :version``. If any row was changed by someone else
meanwhile (another server on the same database), nothing is written and ``write`` returns False; the
caller reloads and decides again. So a state change is applied, and announced, by exactly one worker.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, bindparam, delete, or_, select, true, update

from ...record import new_event_id
from ..state.monitors import CHANGES as _changes
from ..state.monitors import MONITORS as _monitors
from ..state.monitors import RUNS as _runs
from . import config as monitor_config
from .engine import Change, MonitorState, Rules, Run, next_deadline

#: Engine state fields stored as columns of the same name.
STATE_FIELDS = (
    "paused",
    "last_checkin_at",
    "last_ok_at",
    "last_result",
    "next_expected",
    "prev_expected",
    "consecutive_bad",
    "consecutive_ok",
    "streak_started_at",
    "failing_since",
    "failing_reason",
    "episode_missed",
    "episode_errors",
    "episode_timeouts",
)


@dataclasses.dataclass(slots=True, eq=False)
class Entry:
    """One monitor in memory."""

    id: int
    project_id: int
    slug: str
    config: dict[str, Any]
    rules: Rules
    state: MonitorState
    version: int
    announced: bool
    created_at: float
    updated_at: float
    deadline: float | None = None

    def refresh_deadline(self) -> float | None:
        """Recompute when the clock must next look at this monitor."""
        self.deadline = next_deadline(self.rules, self.state)
        return self.deadline


@dataclasses.dataclass(slots=True)
class Pending:
    """What one entry needs written: its new state plus runs and change rows."""

    entry: Entry
    runs: list[Run]
    changes: list[dict[str, Any]]
    config_changed: bool = False


# -- reading -----------------------------------------------------------------------------------------


def entry_from_row(row: Any, open_runs: Iterable[Any] = (), rules: Rules | None = None) -> Entry:
    """An ``Entry`` from a ``monitors`` row and its ``in_progress`` run rows (``rules`` if known)."""
    mapping = row._mapping
    state = MonitorState(**{name: mapping[name] for name in STATE_FIELDS})
    state.paused = bool(state.paused)
    for run_row in open_runs:
        run = run_from_row(run_row)
        state.open_runs[run.key] = run
    config = mapping["config"]
    entry = Entry(
        id=mapping["id"],
        project_id=mapping["project_id"],
        slug=mapping["slug"],
        config=dict(config or {}),
        rules=rules or monitor_config.rules_for(config),
        state=state,
        version=mapping["version"],
        announced=bool(mapping["episode_announced"]),
        created_at=mapping["created_at"],
        updated_at=mapping["updated_at"],
    )
    entry.refresh_deadline()
    return entry


def run_from_row(row: Any) -> Run:
    """A ``Run`` from a ``monitor_runs`` row."""
    return Run(
        key=row.run_key,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration=row.duration,
        missed_slots=row.missed_slots,
    )


def load_all(engine: Engine) -> list[Entry]:
    """Every monitor, with its open runs (at start).

    Monitors with the same configuration share one ``Rules`` (it is immutable), and the garbage
    collector is paused while the entries are built: 100,000 monitors load in seconds, not tens.
    """
    rules_by_config: dict[str, Rules] = {}
    entries: list[Entry] = []
    collecting = gc.isenabled()
    gc.disable()
    try:
        with engine.connect() as conn:
            open_runs: dict[int, list[Any]] = {}
            query = select(_runs).where(_runs.c.status == "in_progress").order_by(_runs.c.id)
            for run_row in conn.execute(query):
                open_runs.setdefault(run_row.monitor_id, []).append(run_row)
            for row in conn.execute(select(_monitors)):
                key = _dumps(row.config)
                rules = rules_by_config.get(key)
                if rules is None:
                    rules = rules_by_config[key] = monitor_config.rules_for(row.config)
                entries.append(entry_from_row(row, open_runs.get(row.id, ()), rules))
    finally:
        if collecting:
            gc.enable()
    return entries


def load_one(conn: Connection, monitor_id: int) -> Entry | None:
    """One monitor as stored now, or None when it was deleted."""
    row = conn.execute(select(_monitors).where(_monitors.c.id == monitor_id)).first()
    if row is None:
        return None
    open_runs = conn.execute(
        select(_runs)
        .where(and_(_runs.c.monitor_id == monitor_id, _runs.c.status == "in_progress"))
        .order_by(_runs.c.id)
    )
    return entry_from_row(row, open_runs)


_FIND_RUNS = select(_runs).where(
    and_(
        _runs.c.monitor_id.in_(bindparam("monitor_ids", expanding=True)),
        _runs.c.run_key.in_(bindparam("run_keys", expanding=True)),
    )
)


def find_runs(conn: Connection, wanted: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Run]:
    """Stored runs by (monitor id, run key), for the pairs in ``wanted`` that exist; one query per 500."""
    pairs = set(wanted)
    found: dict[tuple[int, str], Run] = {}
    ordered = sorted(pairs)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        params = {"monitor_ids": sorted({m for m, _ in chunk}), "run_keys": sorted({k for _, k in chunk})}
        for row in conn.execute(_FIND_RUNS, params):
            key = (row.monitor_id, row.run_key)
            if key in pairs:
                found[key] = run_from_row(row)
    return found


def recent_runs(engine: Engine, monitor_id: int, limit: int) -> list[Any]:
    """The monitor's latest run rows, newest first."""
    with engine.connect() as conn:
        query = (
            select(_runs)
            .where(_runs.c.monitor_id == monitor_id)
            .order_by(_runs.c.started_at.desc(), _runs.c.id.desc())
            .limit(limit)
        )
        return list(conn.execute(query))


def recent_changes(engine: Engine, monitor_id: int, limit: int) -> list[Any]:
    """The monitor's latest state-change rows, newest first."""
    with engine.connect() as conn:
        query = select(_changes).where(_changes.c.monitor_id == monitor_id).order_by(_changes.c.id.desc())
        return list(conn.execute(query.limit(limit)))


def prune(engine: Engine, before: float) -> int:
    """Delete finished runs started before ``before``, and state changes made before it that are
    stored and, when they called for one, announced. Returns the number of rows deleted."""
    with engine.begin() as conn:
        runs = conn.execute(
            delete(_runs).where(and_(_runs.c.started_at < before, _runs.c.status != "in_progress"))
        ).rowcount
        delivered = or_(_changes.c.notify.is_(None), _changes.c.notified_at.is_not(None))
        changes = conn.execute(
            delete(_changes).where(
                and_(_changes.c.created_at < before, _changes.c.stored == true(), delivered)
            )
        ).rowcount
    return int(runs or 0) + int(changes or 0)


# -- writing -----------------------------------------------------------------------------------------


def insert_entry(conn: Connection, project_id: int, slug: str, config: dict[str, Any], now: float) -> Entry:
    """Insert a new monitor row and return its entry (raises IntegrityError when the slug is taken)."""
    state = MonitorState()
    values = {name: getattr(state, name) for name in STATE_FIELDS}
    result = conn.execute(
        _monitors.insert().values(
            project_id=project_id,
            slug=slug,
            config=config,
            status=state.status,
            episode_announced=False,
            version=0,
            created_at=now,
            updated_at=now,
            **values,
        )
    )
    monitor_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    assert monitor_id is not None
    entry = Entry(
        id=int(monitor_id),
        project_id=project_id,
        slug=slug,
        config=config,
        rules=monitor_config.rules_for(config),
        state=state,
        version=0,
        announced=False,
        created_at=now,
        updated_at=now,
    )
    entry.refresh_deadline()
    return entry


#: Columns the clock and check-ins write, in the order of the raw statements below.
_STATE_COLUMNS = (*STATE_FIELDS, "status", "episode_announced", "updated_at")
_RUN_COLUMNS = ("monitor_id", "run_key", "status", "started_at", "finished_at", "duration", "missed_slots")
_CHANGE_COLUMNS = (
    "monitor_id",
    "project_id",
    "slug",
    "event_id",
    "kind",
    "status",
    "at",
    "created_at",
    "details",
    "stored",
    "notify",
    "notified_at",
)


@functools.lru_cache(maxsize=4)
def _statements(paramstyle: str) -> tuple[str, str, str]:
    """The three bulk statements in the driver's own SQL (SQLite and PostgreSQL both take these).

    Written for the driver rather than built by SQLAlchemy because the clock may write tens of
    thousands of rows in one tick, and SQLAlchemy's per-row parameter processing costs more than
    SQLite's own work there.
    """
    mark = "?" if paramstyle == "qmark" else "%s"
    assignments = ", ".join(f"{column} = {mark}" for column in _STATE_COLUMNS)
    update_state = (
        f"UPDATE monitors SET {assignments}, version = version + 1 WHERE id = {mark} AND version = {mark}"
    )
    upsert_runs = (
        f"INSERT INTO monitor_runs ({', '.join(_RUN_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(_RUN_COLUMNS))}) "
        "ON CONFLICT (monitor_id, run_key) DO UPDATE SET status = excluded.status, "
        "started_at = excluded.started_at, finished_at = excluded.finished_at, duration = excluded.duration"
    )
    insert_changes = (
        f"INSERT INTO monitor_changes ({', '.join(_CHANGE_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(_CHANGE_COLUMNS))})"
    )
    return update_state, upsert_runs, insert_changes


def write(conn: Connection, batch: Sequence[Pending], now: float) -> bool:
    """Save every entry of ``batch`` with its runs and changes; False (nothing kept) on a version conflict.

    The caller owns the transaction: on False it must roll back. On True each entry's ``version`` has
    been advanced to what is now stored.
    """
    if not batch:
        return True
    update_state, upsert_runs, insert_changes = _statements(conn.dialect.paramstyle)
    rows = []
    for item in batch:
        entry = item.entry
        state = entry.state
        rows.append(
            (
                *[getattr(state, name) for name in STATE_FIELDS],
                state.status,
                entry.announced,
                now,
                entry.id,
                entry.version,
            )
        )
    if _count(conn, update_state, rows) != len(rows):
        return False
    reconfigured = [item.entry for item in batch if item.config_changed]
    if reconfigured:
        conn.execute(
            update(_monitors).where(_monitors.c.id == bindparam("b_id")).values(config=bindparam("v_config")),
            [{"b_id": entry.id, "v_config": entry.config} for entry in reconfigured],
        )
    run_rows = [_run_values(item.entry.id, run) for item in batch for run in item.runs]
    if run_rows:
        conn.exec_driver_sql(upsert_runs, run_rows)
    change_rows = [
        tuple(_dumps(row[c]) if c == "details" else row[c] for c in _CHANGE_COLUMNS)
        for item in batch
        for row in item.changes
    ]
    if change_rows:
        conn.exec_driver_sql(insert_changes, change_rows)
    for item in batch:
        item.entry.version += 1
        item.entry.updated_at = now
    return True


def _count(conn: Connection, statement: str, rows: list[tuple[Any, ...]]) -> int:
    """Rows changed by ``statement`` over ``rows`` (one executemany where the driver sums rowcounts)."""
    if conn.dialect.name == "sqlite":
        return int(conn.exec_driver_sql(statement, rows).rowcount)
    return sum(int(conn.exec_driver_sql(statement, row).rowcount) for row in rows)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def change_row(entry: Entry, change: Change, now: float, notify: str | None) -> dict[str, Any]:
    """The ``monitor_changes`` row for one engine change (or a management change)."""
    return {
        "monitor_id": entry.id,
        "project_id": entry.project_id,
        "slug": entry.slug,
        "event_id": new_event_id(),
        "kind": change.kind,
        "status": entry.state.status,
        "at": change.at,
        "created_at": now,
        "details": change.details,
        "stored": False,
        "notify": notify,
        "notified_at": None,
    }


def _run_values(monitor_id: int, run: Run) -> tuple[Any, ...]:
    return (
        monitor_id,
        run.key[:200],
        run.status,
        run.started_at,
        run.finished_at,
        run.duration,
        run.missed_slots,
    )
