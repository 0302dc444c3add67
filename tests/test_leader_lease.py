"""The leader lease (``opswatch.server.leader.Lease``) on SQLite and PostgreSQL: one holder, take-over
within the lease after the holder dies, the fence closing before anyone else may lead, hand-over on
release. Every replica here is a ``Lease`` with its own engine on one state store, driven by one fake
monotonic clock (the lease reads no other clock for its decisions)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from opswatch.server.leader import Lease
from opswatch.server.state import leases
from opswatch.server.state.base import create_engine_for
from opswatch.server.state.leases import LEASES

LEASE = 15.0
RENEW = 2.0


class Clock:
    """One monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engines(state_url: str) -> Iterator[list[Engine]]:
    """Three engines on one state store: three replicas' connections."""
    made = [create_engine_for(state_url) for _ in range(3)]
    leases.install(made[0])
    yield made
    for engine in made:
        engine.dispose()


def replica(engine: Engine, name: str, clock: Clock, lease: float = LEASE, renew: float = RENEW) -> Lease:
    return Lease(engine, name, lease=lease, renew=renew, monotonic=clock)


def stored_holder(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(LEASES.c.holder)).scalar_one())


def test_it_gives_the_lease_to_the_first_replica_only(engines: list[Engine], clock: Clock) -> None:
    a, b = replica(engines[0], "a", clock), replica(engines[1], "b", clock)
    assert a.poll() is True
    assert b.poll() is False
    assert a.leading() and not b.leading()
    assert stored_holder(engines[2]) == "a"


def test_it_keeps_the_lease_while_the_holder_renews(engines: list[Engine], clock: Clock) -> None:
    a, b = replica(engines[0], "a", clock), replica(engines[1], "b", clock)
    a.poll()
    for _ in range(50):  # 100 s, many leases long
        clock.advance(RENEW)
        assert a.poll() is True
        assert b.poll() is False
    assert a.acquired == 1 and b.acquired == 0


def test_it_lets_another_replica_lead_within_the_lease_after_the_holder_dies(
    engines: list[Engine], clock: Clock
) -> None:
    a, b = replica(engines[0], "a", clock), replica(engines[1], "b", clock)
    a.poll()
    b.poll()
    clock.advance(RENEW * 0.5)
    assert a.poll()  # the holder's last renewal, then it is killed
    died = clock.now
    took_over = None
    for _ in range(100):
        clock.advance(RENEW)
        if b.poll():
            took_over = clock.now
            break
    assert took_over is not None
    assert took_over - died <= LEASE
    assert took_over - died >= LEASE - 2 * RENEW  # not before the holder's fence has closed
    assert stored_holder(engines[2]) == "b"


def test_its_holder_stops_leading_at_the_fence_before_anyone_else_may_start(
    engines: list[Engine], clock: Clock
) -> None:
    a, b = replica(engines[0], "a", clock), replica(engines[1], "b", clock)
    a.poll()
    renewal_started = clock.now
    # The holder is cut off from the database: it polls no more. A follower polls often.
    fence = None
    took_over = None
    while took_over is None:
        clock.advance(0.25)
        if fence is None and not a.leading():
            fence = clock.now
        if b.poll():
            took_over = clock.now
    assert fence is not None
    assert fence - renewal_started == pytest.approx(LEASE - 3 * RENEW, abs=0.25)
    assert took_over - fence >= RENEW  # the margin: the old leader stopped a renewal period before


def test_a_holder_that_was_taken_over_loses_the_lease_at_its_next_renewal(
    engines: list[Engine], clock: Clock
) -> None:
    a, b = replica(engines[0], "a", clock), replica(engines[1], "b", clock)
    a.poll()
    b.poll()
    clock.advance(LEASE)  # a is paused for a whole lease
    assert b.poll() is True
    assert a.poll() is False  # resumed: its renewal finds the row taken
    assert not a.leading()
    clock.advance(RENEW)
    assert b.poll() is True
    assert a.poll() is False  # and it does not take the row back while b renews


def test_it_hands_over_at_the_next_poll_after_a_release(engines: list[Engine], clock: Clock) -> None:
    a, b = replica(engines[0], "a", clock), replica(engines[1], "b", clock)
    a.poll()
    assert b.poll() is False
    a.release()
    assert not a.leading()
    assert stored_holder(engines[2]) == ""
    assert b.poll() is True


def test_only_one_of_two_followers_takes_over(engines: list[Engine], clock: Clock) -> None:
    a = replica(engines[0], "a", clock)
    b, c = replica(engines[1], "b", clock), replica(engines[2], "c", clock)
    a.poll()
    a.release()
    assert [b.poll(), c.poll()] == [True, False]
    clock.advance(LEASE * 3)  # b dies; c takes over, and only once
    results = []
    for _ in range(10):
        clock.advance(RENEW)
        results.append(c.poll())
    assert results.count(True) >= 1 and c.acquired == 1


def test_it_takes_an_empty_table_at_once_and_one_insert_wins(engines: list[Engine], clock: Clock) -> None:
    a, b = replica(engines[0], "a", clock), replica(engines[1], "b", clock)
    assert a.poll() is True  # no row yet: inserted
    b2 = replica(engines[1], "b2", clock)
    assert b.poll() is False and b2.poll() is False


@pytest.mark.parametrize(("lease", "renew"), [(12.0, 2.0), (1.5, 0.25)])
def test_it_accepts_a_renewal_of_exactly_a_sixth_of_the_lease(
    engines: list[Engine], clock: Clock, lease: float, renew: float
) -> None:
    a = replica(engines[0], "a", clock, lease=lease, renew=renew)
    assert a.poll() and a.hold == pytest.approx(3 * renew)


def test_it_refuses_a_renewal_longer_than_a_sixth_of_the_lease(engines: list[Engine], clock: Clock) -> None:
    with pytest.raises(ValueError, match="at most lease / 6"):
        replica(engines[0], "a", clock, lease=12.0, renew=2.001)
