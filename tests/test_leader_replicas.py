"""Replicas in one test process: servers sharing a state store run the singletons in one of them
(``opswatch.server.leader``), say which on ``/healthz`` and ``/metrics``, and hand over when it stops;
one server alone is unchanged. Also the settings' edges and ``MonitorService.refresh``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from opswatch.config import ConfigError
from opswatch.server.config import ServerSettings
from opswatch.server.leader import Leadership, Lease
from opswatch.server.monitors import CronClock, MonitorService
from opswatch.server.rules import RuleClock
from opswatch.server.state.base import create_engine_for
from opswatch.server.state.leases import install as install_leases
from opswatch.server.testing import RunningServer, running_server

#: Hand-over after a release takes one poll (``leader_renew``); the lease is long enough that a leader
#: whose renewal waits for a busy CPU or disk does not pass its fence (lease - 3 renewals = 4.5 s) and
#: stop for a moment while a test reads who leads.
FAST = {"leader_lease": 6.0, "leader_renew": 0.5}


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def health(server: RunningServer) -> dict[str, object]:
    answer = httpx.get(f"{server.url}/healthz", timeout=10)
    assert answer.status_code == 200
    body: dict[str, object] = answer.json()
    return body


def leader_metric(server: RunningServer) -> str:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return next(line for line in text.splitlines() if line.startswith("opswatch_leader "))


@contextlib.contextmanager
def replica(tmp_path: Path, name: str, database_url: str) -> Iterator[RunningServer]:
    with running_server(tmp_path / name, database_url=database_url, admin_token="t" * 40, **FAST) as server:
        yield server


def test_it_runs_the_singletons_in_one_replica_and_hands_over_when_it_stops(
    tmp_path: Path, state_url: str
) -> None:
    with contextlib.ExitStack() as a_running, contextlib.ExitStack() as b_running:
        a = a_running.enter_context(replica(tmp_path, "a", state_url))
        b = b_running.enter_context(replica(tmp_path, "b", state_url))
        assert wait_until(lambda: [health(a)["leader"], health(b)["leader"]].count(True) == 1)
        leader, follower = (a, b) if health(a)["leader"] else (b, a)
        assert leader_metric(leader) == "opswatch_leader 1"
        assert leader_metric(follower) == "opswatch_leader 0"
        assert health(leader)["holder"] != health(follower)["holder"]
        (a_running if leader is a else b_running).close()  # a clean stop releases the lease
        assert wait_until(lambda: health(follower)["leader"] is True)
        assert leader_metric(follower) == "opswatch_leader 1"


def test_the_follower_takes_over_when_the_leader_stops(tmp_path: Path, state_url: str) -> None:
    with replica(tmp_path, "a", state_url) as a:
        assert wait_until(lambda: health(a)["leader"] is True)
        with replica(tmp_path, "b", state_url) as b:
            time.sleep(3 * FAST["leader_renew"])  # several renewals: b must stay a follower while a leads
            assert health(b)["leader"] is False and health(a)["leader"] is True
        # b stopped; a still leads
        assert health(a)["leader"] is True
    with replica(tmp_path, "b", state_url) as b:
        assert wait_until(lambda: health(b)["leader"] is True)  # a released the lease on its way out


def test_one_server_without_a_shared_database_is_unchanged(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        assert "leader" not in health(server)
        assert "leader" not in server.ctx.extras
        kinds = {type(worker) for worker in server.ctx.background}
        assert {CronClock, RuleClock} <= kinds
        assert not any(
            line.startswith("opswatch_leader")
            for line in httpx.get(f"{server.url}/metrics").text.splitlines()
        )


def test_it_can_be_switched_off_with_a_shared_database(tmp_path: Path, state_url: str) -> None:
    with running_server(tmp_path, database_url=state_url, leader_election="off") as server:
        assert "leader" not in health(server)
        assert CronClock in {type(worker) for worker in server.ctx.background}


def test_a_server_on_its_own_sqlite_file_can_switch_it_on(tmp_path: Path) -> None:
    with running_server(tmp_path, leader_election="on", **FAST) as server:
        assert wait_until(lambda: health(server)["leader"] is True)
        assert [type(w) for w in server.ctx.background][-1] is Leadership


class Worker:
    """A background worker that records its starts and stops."""

    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal

    def start(self) -> None:
        self.journal.append(f"start {self.name}")

    def stop(self) -> None:
        self.journal.append(f"stop {self.name}")


def test_it_starts_the_singletons_on_winning_and_stops_them_in_reverse_at_the_fence(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'state.db'}")
    install_leases(engine)
    now = [0.0]
    journal: list[str] = []
    refreshed: list[float] = []
    lease = Lease(engine, "a", lease=12.0, renew=2.0, monotonic=lambda: now[0])
    gate = Leadership(
        lease, [Worker("clock", journal), Worker("rules", journal)], [lambda: refreshed.append(now[0])]
    )
    gate.run_round()
    assert journal == ["start clock", "start rules"] and refreshed == [0.0]
    now[0] = 6.0 - 0.001  # not renewed: it leads until lease - 3 * renew = 6 s after the renewal started
    gate._settle(pending=False)
    assert gate.running
    now[0] = 6.0
    gate._settle(pending=False)
    assert journal[2:] == ["stop rules", "stop clock"] and not gate.running
    engine.dispose()


@pytest.mark.parametrize(
    ("settings", "ok"),
    [
        ({"leader_lease": "11.99"}, False),  # the default renewal (2 s) is more than a sixth of it
        ({"leader_lease": "12"}, True),
        ({"leader_lease": "1", "leader_renew": "0.1"}, True),  # both at their lower bounds
        ({"leader_lease": "0.99", "leader_renew": "0.1"}, False),
        ({"leader_lease": "1", "leader_renew": "0.099"}, False),
        ({"leader_lease": "3600", "leader_renew": "600"}, True),
        ({"leader_lease": "3600", "leader_renew": "600.01"}, False),
        ({"leader_lease": "3601", "leader_renew": "2"}, False),
    ],
)
def test_it_checks_the_lease_settings_at_their_edges(
    tmp_path: Path, settings: dict[str, str], ok: bool
) -> None:
    environ = {f"OPSWATCH_{name.upper()}": value for name, value in settings.items()}
    if ok:
        loaded = ServerSettings.load(environ, data_dir=tmp_path)
        assert loaded.leader_lease == float(settings["leader_lease"])
    else:
        with pytest.raises(ConfigError, match=r"leader_(lease|renew)"):
            ServerSettings.load(environ, data_dir=tmp_path)


@pytest.mark.parametrize(
    ("raw", "mode"), [("auto", "auto"), ("ON", "on"), ("true", "on"), ("off", "off"), ("0", "off")]
)
def test_it_reads_the_election_mode(tmp_path: Path, raw: str, mode: str) -> None:
    assert ServerSettings.load({"OPSWATCH_LEADER_ELECTION": raw}, data_dir=tmp_path).leader_election == mode


def test_it_names_the_setting_for_a_bad_election_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"OPSWATCH_LEADER_ELECTION.*auto, on or off"):
        ServerSettings.load({"OPSWATCH_LEADER_ELECTION": "sometimes"}, data_dir=tmp_path)


def test_a_monitor_service_refresh_sees_what_another_replica_wrote(state_url: str) -> None:
    engines = [create_engine_for(state_url), create_engine_for(state_url)]
    try:
        a, b = MonitorService(engines[0]), MonitorService(engines[1])
        entry = a.create(1, "nightly", {"schedule": "0 3 * * *"})
        assert len(b) == 0
        assert b.refresh() == 1
        assert b.find("nightly", 1).config == entry.config
        assert b.refresh() == 0  # nothing changed since
        a.pause(entry)
        assert b.find("nightly", 1).state.paused is False
        assert b.refresh() == 1 and b.find("nightly", 1).state.paused is True
        a.delete(a.find("nightly", 1))
        assert b.refresh() == 1 and len(b) == 0
    finally:
        for engine in engines:
            engine.dispose()


def test_a_leader_whose_state_store_stops_answering_stops_its_singletons_at_the_fence(
    tmp_path: Path, state_url: str
) -> None:
    engine, blocker = create_engine_for(state_url), create_engine_for(state_url)
    install_leases(engine)
    journal: list[str] = []
    lease = Lease(engine, "a", lease=3.0, renew=0.5)  # the fence 1.5 s after a renewal: no CPU stall reaches it
    gate = Leadership(lease, [Worker("clock", journal)])
    gate.start()
    try:
        assert wait_until(lambda: gate.running)
        with blocker.connect() as conn:  # the lease row is locked: the holder's renewal hangs
            if blocker.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(text("SELECT 1 FROM leases FOR UPDATE"))
            assert wait_until(lambda: not gate.running, timeout=60)
            assert journal == ["start clock", "stop clock"]
            conn.rollback()
        assert wait_until(lambda: gate.running)  # answering again, and nobody took over: it leads again
        assert journal[-1] == "start clock"
    finally:
        gate.stop()
        engine.dispose()
        blocker.dispose()


def test_a_monitor_created_through_one_replica_takes_check_ins_through_another_at_once(
    state_url: str,
) -> None:
    engines = [create_engine_for(state_url), create_engine_for(state_url)]
    try:
        a, b = MonitorService(engines[0]), MonitorService(engines[1])
        a.create(1, "nightly", {"schedule": "0 3 * * *"})
        ping = {"kind": "check_in", "project_id": 1, "monitor_slug": "nightly", "status": "ok"}
        assert b.refusal(1, ping) is None  # before any refresh: b finds it in the state store
        assert b.find("nightly").slug == "nightly"
        upsert = {**ping, "monitor_config": {"schedule": "0 4 * * *"}}
        assert b.process([upsert]) == [None]  # an upsert updates it rather than inserting it twice
        assert a.refresh() == 1 and a.find("nightly", 1).config["schedule"] == "0 4 * * *"
        assert "no monitor 'weekly'" in str(b.refusal(1, {**ping, "monitor_slug": "weekly"}))
    finally:
        for engine in engines:
            engine.dispose()
