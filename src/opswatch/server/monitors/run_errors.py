"""What failed in a cron run: the error its job reported, found for the failing message.

A check-in says only ``error``; the exception travels as an error record of its own. The opswatch SDK logs
``cron.<slug>.error`` with the exception and the run's ``checkInId`` just before the ``error`` check-in,
so both usually arrive in one batch. Sentry SDKs send the ``error`` check-in first and the error event
after it (when the exception reaches ``capture_exception`` or the excepthook); the two share the trace id
of the scope they were sent from (``contexts.trace.trace_id``), which is also shared by other errors of
the same process, so a trace match must also be close in time.

``RunErrors`` keeps, per server process, the latest error records that name a run or a trace (bounded by
count and age), fed by the monitor service's ingest hook with every durable batch after the issues hook
has counted it, so the issue of a remembered error exists already. ``find`` answers for one run. With
several servers behind one database, an error that reached another server is not seen here: the
message then says only that the job reported a failure.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Engine, and_, select
from sqlalchemy.exc import SQLAlchemyError

from ..issues.notify import issue_url
from ..state.issues import IssueEvent
from .checkins import Incoming
from .engine import Run

#: Errors remembered (oldest forgotten first) and for how long, in seconds of server time.
CAPACITY: Final = 2_000
MAX_AGE: Final = 900.0
#: A trace-only match must have reached the server during the run, give or take ``SLACK`` seconds before
#: it, or at most ``TRACE_WINDOW`` seconds after its result (other errors of the process share the trace).
TRACE_WINDOW: Final = 60.0
SLACK: Final = 2.0
#: Longest error message carried into a failing message (Slack cuts sections at 3,000 characters).
MAX_MESSAGE: Final = 1_000

_RUN_KEYS: Final = ("checkInId", "check_in_id")


@dataclasses.dataclass(frozen=True, slots=True)
class RunError:
    """One error that names a run or a trace: its type, message and event id, and when it arrived."""

    type: str
    message: str
    event_id: str | None
    at: float

    def details(self) -> dict[str, Any]:
        """The keys a failing change's details carry for it."""
        return {"error_type": self.type, "error_message": self.message, "error_event_id": self.event_id}


def run_error(record: Mapping[str, Any], at: float) -> RunError | None:
    """The record as a ``RunError`` when it is an error with an ``error`` object, else None."""
    error = record.get("error")
    if record.get("kind") != "error" or not isinstance(error, Mapping):
        return None
    kind = error.get("type")
    if not isinstance(kind, str) or not kind:
        return None
    message = error.get("message")
    event_id = record.get("event_id")
    return RunError(
        type=kind,
        message=message[:MAX_MESSAGE] if isinstance(message, str) else "",
        event_id=event_id if isinstance(event_id, str) else None,
        at=at,
    )


class RunErrors:
    """Recent run errors by (project, run id) and (project, trace id); thread-safe and bounded."""

    def __init__(self, capacity: int = CAPACITY, max_age: float = MAX_AGE) -> None:
        self.capacity = capacity
        self.max_age = max_age
        self._by_key: collections.OrderedDict[tuple[int, str, str], RunError] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_key)

    def remember(self, records: Sequence[Mapping[str, Any]], now: float) -> int:
        """Keep the error records of a batch that name a run or a trace; returns how many were kept."""
        kept = 0
        with self._lock:
            for record in records:
                keys = _keys(record)
                if not keys:
                    continue
                found = run_error(record, now)
                if found is None:
                    continue
                for key in keys:
                    self._by_key.pop(key, None)
                    self._by_key[key] = found
                kept += 1
            self._forget(now)
        return kept

    def find(
        self, project_id: int, run_id: str | None, trace_id: str | None, started: float, ended: float
    ) -> RunError | None:
        """The error of the run ``run_id``; failing that, the latest of ``trace_id`` that arrived while the
        run went on (from ``started``) or up to ``TRACE_WINDOW`` seconds after it ``ended``."""
        with self._lock:
            if run_id:
                by_run = self._by_key.get((project_id, "run", run_id))
                if by_run is not None:
                    return by_run
            if trace_id:
                by_trace = self._by_key.get((project_id, "trace", trace_id))
                if by_trace is not None and started - SLACK <= by_trace.at <= ended + TRACE_WINDOW:
                    return by_trace
        return None

    def _forget(self, now: float) -> None:
        entries = self._by_key
        oldest = now - self.max_age
        while entries and (len(entries) > self.capacity or next(iter(entries.values())).at < oldest):
            entries.popitem(last=False)


def _keys(record: Mapping[str, Any]) -> list[tuple[int, str, str]]:
    project = record.get("project_id")
    if not isinstance(project, int) or isinstance(project, bool):
        return []
    keys: list[tuple[int, str, str]] = []
    for name in _RUN_KEYS:
        value = record.get(name)
        if isinstance(value, str) and value:
            keys.append((project, "run", value))
            break
    trace = record.get("trace_id")
    if isinstance(trace, str) and trace:
        keys.append((project, "trace", trace))
    return keys


# -- failing changes -----------------------------------------------------------------------------------


def note_run(
    errors: RunErrors, project_id: int, details: dict[str, Any], run: Run | None, incoming: Incoming
) -> None:
    """At check-in time, on a failing change that an ``error`` result caused: note the run's times and
    trace (kept with the change, so the outbox can look again later) and the run's error when known."""
    if details.get("reason") != "error":
        return
    if run is not None:
        details["run_started_at"] = run.started_at
        details["run_finished_at"] = run.finished_at
    if incoming.trace_id:
        details["trace_id"] = incoming.trace_id
        if incoming.source == "sentry":
            details["error_follows"] = True  # Sentry SDKs send the error event after the check-in
    found = _find(errors, project_id, details)
    if found is not None:
        details.update(found.details())


def awaits_error(details: Mapping[str, Any]) -> bool:
    """True while a failing change expects its run's error event and has not found it yet."""
    return bool(details.get("error_follows")) and not details.get("error_type")


class FailureExplainer:
    """For the outbox: what a failing message adds when it is about to be sent (the run's error, if it
    arrived since the check-in, and the link to that error's issue)."""

    def __init__(self, errors: RunErrors, engine: Engine, base_url: str) -> None:
        self.errors = errors
        self.engine = engine
        self.base_url = base_url

    def __call__(self, project_id: int, details: Mapping[str, Any]) -> dict[str, Any]:
        """Keys to add to ``details`` (a ``failing`` change's); empty when there is nothing to add."""
        extra: dict[str, Any] = {}
        if details.get("reason") != "error":
            return extra
        if not details.get("error_type"):
            found = _find(self.errors, project_id, details)
            if found is not None:
                extra.update(found.details())
        event_id = extra.get("error_event_id") or details.get("error_event_id")
        if isinstance(event_id, str) and self.base_url and not details.get("issue_url"):
            issue_id = issue_of(self.engine, project_id, event_id)
            if issue_id is not None:
                extra["issue_id"] = issue_id
                extra["issue_url"] = issue_url(self.base_url, issue_id)
        return extra


def issue_of(engine: Engine, project_id: int, event_id: str) -> int | None:
    """The issue an event was counted into, or None (not an issue, or no issues subsystem here)."""
    table = IssueEvent.__table__
    query = select(table.c.issue_id).where(
        and_(table.c.project_id == project_id, table.c.event_id == event_id)
    )
    try:
        with engine.connect() as conn:
            found = conn.execute(query).scalar()
    except SQLAlchemyError:  # the issues tables are not installed on this server
        return None
    return int(found) if found is not None else None


def _find(errors: RunErrors, project_id: int, details: Mapping[str, Any]) -> RunError | None:
    run_id, trace_id = details.get("run_id"), details.get("trace_id")
    started, ended = details.get("run_started_at"), details.get("run_finished_at")
    if not isinstance(started, (int, float)) or not isinstance(ended, (int, float)):
        trace_id = None  # without the run's times a trace alone says too little
        started = ended = 0.0
    return errors.find(
        project_id,
        run_id if isinstance(run_id, str) else None,
        trace_id if isinstance(trace_id, str) else None,
        float(started),
        float(ended),
    )
