"""The cron monitor state machine: pure, in memory, no I/O.

Given a monitor's configuration and state, a check-in or a clock tick at time ``now`` (seconds since the
epoch, the server's clock) changes the state in place and returns an :class:`Outcome`: the state changes
to record (missed, timeout, failing, recovered) and the run rows to write. Nothing here reads a clock,
a database or the network, so every rule can be tested by handing it times.

The rules, and the promises they keep:

- **Slots.** A calendar schedule (crontab) has slots; ``next_expected`` is the earliest slot not yet
  accounted for. A check-in of any kind (``in_progress`` too) at ``t`` satisfies that slot when
  ``t >= slot - early``, where ``early`` is ``early_margin`` capped at half the gap between slots (a
  check-in belongs to the nearer slot). So a job whose clock runs a little fast never causes a false
  miss. An interval schedule (``every 30 seconds``) counts from the last check-in instead.
- **Missed.** No check-in by ``slot + checkin_margin`` marks the slot missed, dated at the slot. When
  several slots are overdue at once (the server itself was down) they become ONE miss that says how many
  slots it covers. A monitor that never checked in has no slot and is never missed.
- **Timeout.** An ``in_progress`` run with no ``ok``/``error`` within ``max_runtime`` of its actual
  start is timed out, even if newer runs finished meanwhile. A late result for a timed-out run records
  its duration; the run stays timed out and the result does not count as an ``ok``.
- **Failing / recovered.** ``failure_threshold`` consecutive bad outcomes (error, missed, timeout) open
  a failing episode, dated at the first bad outcome of the streak (a catch-up miss counts once per slot
  it covers); ``recovery_threshold`` consecutive ``ok`` close it. One episode produces one ``failing``
  and one ``recovered`` change, however many slots it misses.
- **Runs.** A run's ``finished_at - started_at`` is its ``duration``: when the client sent a duration, the
  start is the result's arrival less that duration (arrival times alone are off by network and batching
  delays). A result closes the run with its ``run_id``; without one it closes the latest run that was
  started without one (as pings pair ``/start`` with the next ping), or stands alone. A second result
  for a finished run and an ``in_progress`` for a started or finished run are ignored
  (``Outcome.ignored`` says why).
- **Paused.** A paused monitor keeps a run history but is never missed, timed out or failed; resuming
  starts counting from the resume time.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Final, Literal, Protocol

CheckInStatus = Literal["in_progress", "ok", "error"]

#: Monitor statuses; ``error`` is a failed run that has not (yet) reached the failure threshold.
STATUSES: Final = ("new", "ok", "error", "missed", "timeout", "failing", "paused")
BAD_KINDS: Final = ("error", "missed", "timeout")

#: How many finished runs with explicit ids a state remembers for duplicate detection (the service
#: looks older ones up in the database).
RECENT_RUNS: Final = 32
#: A catch-up counts at most this many overdue slots one by one, then jumps (a month of a minutely job).
MAX_COUNTED_SLOTS: Final = 50_000

_AUTO_PREFIX: Final = "auto:"


class Slots(Protocol):
    """The schedule math the engine needs (see ``opswatch.server.monitors.slots``)."""

    @property
    def anchored(self) -> bool:
        """True for interval schedules: the next slot counts from the last check-in, not from a grid."""
        ...

    @property
    def period(self) -> float | None:
        """Seconds between slots when that is fixed (``every 30 seconds``), else ``None``."""
        ...

    def next_after(self, t: float) -> float:
        """The first slot strictly after ``t`` (epoch seconds); for an interval, ``t`` plus the interval."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Rules:
    """A monitor's timing rules, in seconds, with defaults already applied (see ``config``)."""

    slots: Slots
    checkin_margin: float = 60.0
    early_margin: float = 60.0
    max_runtime: float = 1800.0
    failure_threshold: int = 1
    recovery_threshold: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class CheckIn:
    """One check-in as the engine sees it; ``duration`` is what the client measured, in seconds."""

    status: CheckInStatus
    run_id: str | None = None
    duration: float | None = None


@dataclasses.dataclass(slots=True)
class Run:
    """One run of the job: a row of the run history."""

    key: str
    status: str  # in_progress | ok | error | timeout | missed | abandoned
    started_at: float
    finished_at: float | None = None
    duration: float | None = None
    missed_slots: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """A state change worth recording (and maybe announcing): missed, timeout, failing, recovered."""

    kind: str
    at: float
    details: dict[str, Any]


@dataclasses.dataclass(slots=True)
class Outcome:
    """What one call did: changes to record, runs to write (inserted or updated), or why it was ignored."""

    changes: list[Change] = dataclasses.field(default_factory=list)
    runs: list[Run] = dataclasses.field(default_factory=list)
    ignored: str | None = None


@dataclasses.dataclass(slots=True)
class MonitorState:
    """Everything the engine knows about one monitor between calls."""

    paused: bool = False
    last_checkin_at: float | None = None
    last_ok_at: float | None = None
    last_result: str | None = None  # ok | error | missed | timeout
    next_expected: float | None = None
    prev_expected: float | None = None
    consecutive_bad: int = 0
    consecutive_ok: int = 0
    streak_started_at: float | None = None
    failing_since: float | None = None
    failing_reason: str | None = None
    episode_missed: int = 0
    episode_errors: int = 0
    episode_timeouts: int = 0
    open_runs: dict[str, Run] = dataclasses.field(default_factory=dict)
    recent_runs: dict[str, Run] = dataclasses.field(default_factory=dict)

    @property
    def status(self) -> str:
        """new, ok, error, missed, timeout, failing or paused."""
        if self.paused:
            return "paused"
        if self.failing_since is not None:
            return "failing"
        return self.last_result or "new"

    def remember(self, run: Run) -> None:
        """Keep a finished run with an explicit id for duplicate detection (bounded)."""
        if run.key.startswith(_AUTO_PREFIX):
            return
        self.recent_runs.pop(run.key, None)
        self.recent_runs[run.key] = run
        while len(self.recent_runs) > RECENT_RUNS:
            del self.recent_runs[next(iter(self.recent_runs))]


# -- public operations ---------------------------------------------------------------------------------


def checkin(rules: Rules, state: MonitorState, ci: CheckIn, now: float) -> Outcome:
    """Apply one check-in received at ``now``; first lets the clock catch up to ``now``."""
    out = Outcome()
    advance(rules, state, now, out)
    key = ci.run_id or None
    if key is not None:
        finished = state.recent_runs.get(key)
        if ci.status == "in_progress":
            if finished is not None:
                out.ignored = f"run {key} already finished ({finished.status})"
                return out
            if key in state.open_runs:
                out.ignored = f"run {key} already started"
                return out
        elif finished is not None:
            if finished.status == "timeout" and finished.finished_at is None:
                _late_result(rules, state, finished, ci, now, out)
            else:
                out.ignored = f"duplicate {ci.status} for run {key} (already {finished.status})"
            return out

    state.last_checkin_at = now
    if not state.paused:
        _satisfy_slot(rules, state, now)
    if ci.status == "in_progress":
        run = Run(key=key or _auto_key(state, now), status="in_progress", started_at=now)
        state.open_runs[run.key] = run
        out.runs.append(run)
        return out

    run_open = state.open_runs.pop(key, None) if key is not None else _pop_auto_run(state)
    duration = ci.duration if ci.duration is not None and ci.duration >= 0 else None
    if run_open is not None:
        run = run_open
        if duration is None:
            duration = max(0.0, now - run.started_at)
        else:  # the client measured the run: its start is the end less that, not when in_progress arrived
            run.started_at = now - duration
    else:
        started = now - duration if duration is not None else now
        run = Run(key=key or _auto_key(state, now), status=ci.status, started_at=started)
    run.status = ci.status
    run.finished_at = now
    run.duration = duration
    state.remember(run)
    out.runs.append(run)
    if state.paused:
        return out
    if ci.status == "ok":
        _good(rules, state, now, out)
    else:
        _bad(rules, state, "error", now, 1, out, run_id=run.key)
    return out


def tick(rules: Rules, state: MonitorState, now: float) -> Outcome:
    """Let the clock reach ``now``: mark overdue slots missed and overdue runs timed out."""
    out = Outcome()
    advance(rules, state, now, out)
    return out


def next_deadline(rules: Rules, state: MonitorState) -> float | None:
    """The earliest time at which ``tick`` would change something, or ``None`` (nothing pending)."""
    if state.paused:
        return None
    deadline = math.inf
    if state.next_expected is not None:
        deadline = state.next_expected + rules.checkin_margin
    for run in state.open_runs.values():
        deadline = min(deadline, run.started_at + rules.max_runtime)
    return None if deadline == math.inf else deadline


def pause(state: MonitorState) -> None:
    """Stop judging the monitor; it keeps its history."""
    state.paused = True


def resume(rules: Rules, state: MonitorState, now: float) -> Outcome:
    """Judge the monitor again from ``now`` on: no backlog of misses; runs begun long ago are abandoned."""
    out = Outcome()
    if not state.paused:
        return out
    state.paused = False
    for key, run in list(state.open_runs.items()):
        if run.started_at + rules.max_runtime <= now:
            del state.open_runs[key]
            run.status = "abandoned"
            out.runs.append(run)
    if state.last_checkin_at is None:
        state.next_expected = state.prev_expected = None
    else:
        state.prev_expected = now if rules.slots.anchored else None
        state.next_expected = rules.slots.next_after(now)
    return out


def rebase(rules: Rules, state: MonitorState, now: float) -> None:
    """After a schedule change: the next slot is counted from ``now`` under the new rules."""
    if state.last_checkin_at is None or state.paused:
        return
    if rules.slots.anchored:
        anchor = state.last_checkin_at
        state.prev_expected = anchor
        state.next_expected = max(rules.slots.next_after(anchor), now)
    else:
        state.prev_expected = None
        state.next_expected = rules.slots.next_after(now)


# -- the clock ---------------------------------------------------------------------------------------


def advance(rules: Rules, state: MonitorState, now: float, out: Outcome) -> None:
    """Process, in time order, every slot deadline and run deadline that is due at ``now``."""
    if state.paused:
        return
    margin = rules.checkin_margin
    while True:
        slot_due = math.inf if state.next_expected is None else state.next_expected + margin
        run = _oldest_open_run(state)
        run_due = math.inf if run is None else run.started_at + rules.max_runtime
        due = min(slot_due, run_due)
        if due > now:
            return
        if run is not None and run_due <= slot_due:
            _time_out(rules, state, run, run_due, out)
        else:
            _miss(rules, state, now, out)


def _miss(rules: Rules, state: MonitorState, now: float, out: Outcome) -> None:
    assert state.next_expected is not None
    first = state.next_expected
    margin = rules.checkin_margin
    count = 0
    slot = first
    last = first
    capped = False
    period = rules.slots.period
    if period is not None:
        count = int((now - margin - first) // period) + 1
        last = first + (count - 1) * period
        slot = last + period
    else:
        while slot + margin <= now and count < MAX_COUNTED_SLOTS:
            count += 1
            last = slot
            slot = rules.slots.next_after(slot)
        if slot + margin <= now:  # too many to count one by one: jump ahead, and say so
            last = slot
            slot = rules.slots.next_after(now - margin)
            capped = True
    state.prev_expected = last
    state.next_expected = slot
    details: dict[str, Any] = {"expected_at": first, "slots": count}
    if count > 1 or capped:
        details["last_expected_at"] = last
    if capped:
        details["slots_counted_up_to"] = MAX_COUNTED_SLOTS
    out.runs.append(Run(key=f"missed:{first:.0f}", status="missed", started_at=first, missed_slots=count))
    out.changes.append(Change("missed", first, details))
    _bad(rules, state, "missed", first, count, out)


def _time_out(rules: Rules, state: MonitorState, run: Run, at: float, out: Outcome) -> None:
    del state.open_runs[run.key]
    run.status = "timeout"
    state.remember(run)
    out.runs.append(run)
    details = {"run_id": run.key, "started_at": run.started_at, "max_runtime": rules.max_runtime}
    out.changes.append(Change("timeout", at, details))
    _bad(rules, state, "timeout", at, 1, out, run_id=run.key)


# -- outcomes ----------------------------------------------------------------------------------------


def _bad(
    rules: Rules,
    state: MonitorState,
    kind: str,
    at: float,
    weight: int,
    out: Outcome,
    run_id: str | None = None,
) -> None:
    if state.consecutive_bad == 0 and state.failing_since is None:
        state.episode_missed = state.episode_errors = state.episode_timeouts = 0
    if state.consecutive_bad == 0:
        state.streak_started_at = at
    state.consecutive_bad += weight
    state.consecutive_ok = 0
    state.last_result = kind
    if kind == "missed":
        state.episode_missed += weight
    elif kind == "timeout":
        state.episode_timeouts += weight
    else:
        state.episode_errors += weight
    if state.failing_since is None and state.consecutive_bad >= rules.failure_threshold:
        since = state.streak_started_at if state.streak_started_at is not None else at
        state.failing_since = since
        state.failing_reason = kind
        details: dict[str, Any] = {
            "reason": kind,
            "since": since,
            "consecutive": state.consecutive_bad,
            "last_ok_at": state.last_ok_at,
        }
        if run_id is not None:
            details["run_id"] = run_id
        out.changes.append(Change("failing", at, details))


def _good(rules: Rules, state: MonitorState, at: float, out: Outcome) -> None:
    state.consecutive_bad = 0
    state.streak_started_at = None
    state.consecutive_ok += 1
    state.last_ok_at = at
    state.last_result = "ok"
    if state.failing_since is not None and state.consecutive_ok >= rules.recovery_threshold:
        details = {
            "since": state.failing_since,
            "reason": state.failing_reason,
            "missed": state.episode_missed,
            "errors": state.episode_errors,
            "timeouts": state.episode_timeouts,
        }
        state.failing_since = None
        state.failing_reason = None
        out.changes.append(Change("recovered", at, details))


def _late_result(rules: Rules, state: MonitorState, run: Run, ci: CheckIn, now: float, out: Outcome) -> None:
    """A result for a timed-out run: keep its duration, never its status. It is still a check-in."""
    state.last_checkin_at = now
    if not state.paused:
        _satisfy_slot(rules, state, now)
    run.finished_at = now
    if ci.duration is not None and ci.duration >= 0:
        run.duration = ci.duration
        run.started_at = now - ci.duration
    else:
        run.duration = max(0.0, now - run.started_at)
    out.runs.append(run)
    out.ignored = f"run {run.key} already timed out; duration recorded"


# -- slots -------------------------------------------------------------------------------------------


def _satisfy_slot(rules: Rules, state: MonitorState, now: float) -> None:
    slots = rules.slots
    if slots.anchored:
        state.prev_expected = now
        state.next_expected = slots.next_after(now)
        return
    if state.next_expected is None:
        # First check-in: it satisfies the coming slot if it is early for it; otherwise it belonged to
        # a slot already past, and the coming one is the next expected.
        coming = slots.next_after(now)
        following = slots.next_after(coming)
        early = min(rules.early_margin, (following - coming) / 2)
        if now >= coming - early:
            state.prev_expected, state.next_expected = coming, following
        else:
            state.prev_expected, state.next_expected = None, coming
        return
    expected = state.next_expected
    if state.prev_expected is not None:
        gap = expected - state.prev_expected
    else:
        gap = slots.next_after(expected) - expected
    if now >= expected - min(rules.early_margin, gap / 2):
        state.prev_expected = expected
        state.next_expected = slots.next_after(expected)


# -- runs --------------------------------------------------------------------------------------------


def _auto_key(state: MonitorState, now: float) -> str:
    key = f"{_AUTO_PREFIX}{now:.6f}"
    n = 1
    while key in state.open_runs:
        n += 1
        key = f"{_AUTO_PREFIX}{now:.6f}.{n}"
    return key


def _pop_auto_run(state: MonitorState) -> Run | None:
    """A result without a run id closes the most recent run that was started without one."""
    for key in reversed(list(state.open_runs)):
        if key.startswith(_AUTO_PREFIX):
            return state.open_runs.pop(key)
    return None


def _oldest_open_run(state: MonitorState) -> Run | None:
    if not state.open_runs:
        return None
    return min(state.open_runs.values(), key=lambda run: run.started_at)
