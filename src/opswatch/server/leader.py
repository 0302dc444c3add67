"""Leader election: of the replicas sharing a state store, one runs the singletons.

Every ``opswatch serve`` sharing one PostgreSQL takes events and answers the API and the dashboard, but
the singletons (the cron clock, the rule clock, the issue sweeper, retention of a shared event store,
and the notification senders they drive) run only in the replica holding the lease row ``singletons``
of the ``leases`` table (``state/leases.py``). ``install(ctx)`` (called once the subsystems have
registered their workers) moves those workers from ``ctx.background`` behind a ``Leadership`` that
starts them when this replica gains the lease and stops them when it loses it. With election off (the
default without ``OPSWATCH_DATABASE_URL``) nothing changes: every worker runs, as in one process.

The lease trusts no clock across machines, only each replica's own monotonic clock (the scheme of
Kubernetes' leader election). With ``lease`` L and ``renew`` r seconds:

* the holder renews every r seconds with ``UPDATE ... SET version = version + 1 WHERE holder = <me> AND
  version = <mine>``, and counts itself leader until L - 3r after the *start* of its latest successful
  renewal; it stops its singletons then, whether or not the database answers (the fence);
* every other replica reads the row every r seconds; once it has seen the same ``version`` for L - 2r
  seconds of its own clock, it takes the row over with a conditional update on that version (one
  replica wins); a released row (holder ``""``, a clean shutdown) is taken at once.

A follower first sees a version after it was written, so it cannot take over before L - 2r after the
holder's renewal started, while the holder stopped at L - 3r: the fence leaves r seconds between the old
leader's stop and the new one's start. A dead holder's last version is seen within r of its write and
acted on at the next poll after L - 2r, so another replica leads within L seconds of the death (plus a
state-store round trip). ``renew`` must be at most ``lease / 6``: the fence is then at least 3r after a
renewal, so the holder has two more tries before it.

Correctness does not rest on the lease alone. A replica that cannot stop in time (a tick still running
when the fence closes, a process paused and resumed) could overlap with the next leader for a moment;
every singleton's writes are conditional (monitor versions, claimed notices, rule state versions), so a
state change is still written once and a message sent once. The lease keeps the overlap rare and the
work in one place.

Each round also calls the ``refresh`` callables on every replica (the monitor service reloads monitors
another replica created or changed), so a new leader judges what is stored, not what it last saw.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..log import get_logger
from . import limits
from .context import Background, ServerContext
from .metrics import Gauge
from .state import leases as tables
from .state.leases import LEASES

_log = get_logger("opswatch.server.leader")

#: The row the singletons' leader holds.
LEASE_NAME: Final = "singletons"
#: Where ``install`` keeps the ``Leadership`` in ``ctx.extras``.
EXTRA: Final = "leader"


def holder_id() -> str:
    """This process's name in the lease row: host, process id and a random part (a restarted process
    with a recycled pid is a different holder)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """One replica's view of the lease row; ``poll`` once per ``renew`` seconds (not thread-safe: one
    thread polls). ``leading()`` says whether this replica may run the singletons now."""

    def __init__(
        self,
        engine: Engine,
        holder: str,
        *,
        lease: float,
        renew: float,
        name: str = LEASE_NAME,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not renew > 0 or not lease >= 6 * renew:
            raise ValueError(f"renew must be positive and at most lease / 6 (lease {lease}, renew {renew})")
        self.engine = engine
        self.holder = holder
        self.name = name
        self.lease = lease
        self.renew = renew
        self.monotonic = monotonic
        self.wall = wall
        #: Monotonic time until which this replica leads; None when it does not hold the lease.
        self.valid_until: float | None = None
        #: How many times this replica took the lease.
        self.acquired = 0
        self._version: int | None = None
        self._seen: int | None = None
        self._seen_at = 0.0

    @property
    def hold(self) -> float:
        """Seconds the holder leads after the start of its latest successful renewal."""
        return self.lease - 3 * self.renew

    @property
    def patience(self) -> float:
        """Seconds a follower waits, seeing one version, before it takes the lease over."""
        return self.lease - 2 * self.renew

    def leading(self) -> bool:
        """True while this replica holds the lease and its fence has not closed."""
        return self.valid_until is not None and self.monotonic() < self.valid_until

    def poll(self) -> bool:
        """Renew the lease (holder) or take it over when it is free or its holder is gone (follower);
        whether this replica leads afterwards. A state-store error propagates; the lease then runs out
        by itself."""
        started = self.monotonic()
        if self._version is not None and self._renew(started):
            return True
        return self._try_take(started)

    def release(self) -> None:
        """Give the lease up (a clean stop, after the singletons stopped): another replica takes it at
        its next poll instead of waiting for the lease to run out."""
        mine = self._version
        self._lose()
        if mine is None:
            return
        with self.engine.begin() as conn:
            conn.execute(self._mine(mine).values(holder="", version=mine + 1, renewed_at=self.wall()))

    def _mine(self, version: int) -> Any:
        return update(LEASES).where(
            LEASES.c.name == self.name, LEASES.c.holder == self.holder, LEASES.c.version == version
        )

    def _renew(self, started: float) -> bool:
        mine = self._version
        assert mine is not None
        with self.engine.begin() as conn:
            renewed = conn.execute(self._mine(mine).values(version=mine + 1, renewed_at=self.wall())).rowcount
        if renewed == 1:
            self._version = mine + 1
            self.valid_until = started + self.hold
            return True
        _log.warn("this replica lost the leader lease", {"holder": self.holder})
        self._lose()
        return False

    def _lose(self) -> None:
        self._version = None
        self.valid_until = None

    def _try_take(self, started: float) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(select(LEASES).where(LEASES.c.name == self.name)).first()
        if row is None:
            return self._insert(started)
        if row.holder and row.holder != self.holder:
            now = self.monotonic()  # after the read: the version was written before this moment
            if row.version != self._seen:
                self._seen, self._seen_at = row.version, now
                return False
            if now - self._seen_at < self.patience:
                return False
        wall = self.wall()
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(LEASES)
                .where(LEASES.c.name == self.name, LEASES.c.version == row.version)
                .values(holder=self.holder, version=row.version + 1, acquired_at=wall, renewed_at=wall)
            ).rowcount
        if taken != 1:
            return False  # another replica was quicker
        return self._won(row.version + 1, started, previous=row.holder)

    def _insert(self, started: float) -> bool:
        wall = self.wall()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(LEASES).values(
                        name=self.name, holder=self.holder, version=1, acquired_at=wall, renewed_at=wall
                    )
                )
        except IntegrityError:
            return False  # another replica created it first
        return self._won(1, started, previous="")

    def _won(self, version: int, started: float, previous: str) -> bool:
        self._version = version
        self.valid_until = started + self.hold
        self.acquired += 1
        _log.info("this replica took the leader lease", {"holder": self.holder, "previous": previous or None})
        return True


class Leadership:
    """``ctx.background`` entry: polls the lease on its own thread and runs ``singletons`` exactly while
    this replica leads (started in order, stopped in reverse). A poll runs on a short-lived thread of
    its own, so a state store that hangs cannot keep the fence from closing."""

    def __init__(
        self,
        lease: Lease,
        singletons: Sequence[Background],
        refresh: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.lease = lease
        self.singletons = list(singletons)
        self.refresh = list(refresh)
        #: True while the singletons run here.
        self.running = False
        #: Rounds that failed (the state store did not answer); the lease runs out by itself meanwhile.
        self.failures = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._round: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Leadership(holder={self.lease.holder!r}, running={self.running})"

    def status(self) -> dict[str, object]:
        """What ``/healthz`` shows: whether this replica leads, and its holder id."""
        return {"leader": self.running, "holder": self.lease.holder}

    def start(self) -> None:
        """Start polling (once); the singletons start when the lease is won."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="opswatch-leader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the singletons, then release the lease so another replica takes over at once."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        self._thread = None
        self._stop_singletons()
        round_thread = self._round
        if round_thread is not None:
            round_thread.join(timeout)  # not release while a round may still renew
        try:
            self.lease.release()
        except Exception as err:
            _log.error("the leader lease could not be released; it runs out by itself", None, err)

    def run_round(self) -> None:
        """One round by hand (tests): poll the lease, refresh, and start or stop the singletons."""
        self._poll()
        self._settle(pending=False)

    def _poll(self) -> None:
        try:
            self.lease.poll()
        except Exception as err:
            self.failures += 1
            if self.failures % 30 == 1:
                _log.error("the leader lease could not be polled", {"failures": self.failures}, err)
        for refresh in self.refresh:
            try:
                refresh()
            except Exception as err:
                _log.error("a replica refresh failed; will retry", {"refresh": repr(refresh)}, err)

    def _run(self) -> None:
        lease = self.lease
        next_poll = lease.monotonic()
        while not self._stop.is_set():
            self._wake.clear()
            now = lease.monotonic()
            if self._round is not None and not self._round.is_alive():
                self._round = None
            if self._round is None and now >= next_poll:
                next_poll = now + lease.renew
                self._round = threading.Thread(target=self._poll_and_wake, name="opswatch-lease", daemon=True)
                self._round.start()
            self._settle(pending=self._round is not None)
            until = next_poll
            fence = lease.valid_until
            if self.running and fence is not None:
                until = min(until, fence)
            self._wake.wait(max(0.0, min(until - lease.monotonic(), lease.renew)))

    def _poll_and_wake(self) -> None:
        try:
            self._poll()
        finally:
            self._wake.set()

    def _settle(self, pending: bool) -> None:
        """Start the singletons when this replica leads (after a complete round, so the refresh ran),
        stop them the moment it does not."""
        leading = self.lease.leading()
        if leading and not self.running and not pending and not self._stop.is_set():
            self.running = True
            for worker in self.singletons:
                try:
                    worker.start()
                except Exception as err:
                    _log.error("a singleton failed to start", {"worker": repr(worker)}, err)
        elif not leading and self.running:
            self._stop_singletons()

    def _stop_singletons(self) -> None:
        if not self.running:
            return
        self.running = False
        for worker in reversed(self.singletons):
            try:
                worker.stop()
            except Exception as err:
                _log.error("a singleton failed to stop", {"worker": repr(worker)}, err)


def election_enabled(settings: Any) -> bool:
    """``leader_election``: ``on``, ``off``, or ``auto`` (on when ``database_url`` names a shared state
    store, the only way several servers can share state)."""
    mode = str(getattr(settings, "leader_election", "auto"))
    if mode == "auto":
        return bool(getattr(settings, "database_url", ""))
    return mode == "on"


def runs_everywhere(worker: object, ctx: ServerContext) -> bool:
    """Workers every replica runs: those that say so (``every_replica = True``), and the retention of
    an embedded event store (each replica has its own)."""
    if getattr(worker, "every_replica", False):
        return True
    from .store.retention import RetentionJob

    return isinstance(worker, RetentionJob) and not getattr(ctx.settings, "events_url", None)


def install(ctx: ServerContext) -> Leadership | None:
    """Put the singletons among ``ctx.background`` behind the lease (see the module docstring); None
    when election is off. Call after every subsystem registered its workers (``install_subsystems``)."""
    if ctx.extras.get(EXTRA) is not None or not election_enabled(ctx.settings):
        return ctx.extras.get(EXTRA)
    tables.install(ctx.engine)
    settings = ctx.settings
    lease = Lease(
        ctx.engine,
        holder_id(),
        lease=float(getattr(settings, "leader_lease", limits.LEADER_LEASE_SECONDS)),
        renew=float(getattr(settings, "leader_renew", limits.LEADER_RENEW_SECONDS)),
    )
    refresh: list[Callable[[], object]] = []
    monitors = ctx.extras.get("monitors")
    if monitors is not None and hasattr(monitors, "refresh"):
        refresh.append(monitors.refresh)
    everywhere = [worker for worker in ctx.background if runs_everywhere(worker, ctx)]
    singletons = [worker for worker in ctx.background if not runs_everywhere(worker, ctx)]
    leadership = Leadership(lease, singletons, refresh)
    ctx.background[:] = [*everywhere, leadership]
    ctx.extras[EXTRA] = leadership
    ctx.metrics.add(
        Gauge(
            "opswatch_leader",
            "1 while this replica holds the leader lease and runs the singletons (cron clock, rules ...).",
            lambda: 1.0 if leadership.running else 0.0,
        )
    )
    return leadership
