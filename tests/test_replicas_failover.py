"""Three ``opswatch serve`` processes on one PostgreSQL, the leader killed with SIGKILL while a cron
heartbeat goes missed and a rule fires: exactly one Slack message each, and the cron clock resumes in
another replica within the lease time.

Each replica keeps its events in its own embedded DuckDB directory (a DuckDB file has one writing
process; a shared event store is ClickHouse, which does not run here). The rule is an absence rule
(``count < 1`` over events nobody sends), so it fires on whichever replica's store evaluates it. Slack is
``SlackReceiver``, a real HTTP server on 127.0.0.1. Under ``CI=true`` a missing PostgreSQL fails the test.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from opswatch.server.state.base import create_engine_for
from opswatch.server.state.leases import LEASES
from opswatch.server.state.monitors import CHANGES
from opswatch.server.state.rules import STATUS
from served import read_banner
from slack_receiver import SlackReceiver
from state_databases import state_url as fresh_state_url

pytestmark = pytest.mark.slow

LEASE = 6.0
RENEW = 1.0
#: What "within the lease" allows on top of the lease, for the state store's round trips and for
#: starting the singletons' threads in the new leader (measured: well under a second).
SLACK = 2.0
TOKEN = "replica-test-token-" + "x" * 24

RULES = """
[[rules]]
name = "no-orders"
signal = "count"
where = "operation = 'orders.completed'"
window = "1m"
critical = "< 1"
"""


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_state_url("postgresql", tmp_path)


class Replica:
    """One ``opswatch serve`` process."""

    def __init__(self, process: subprocess.Popen[str], url: str, key: str) -> None:
        self.process = process
        self.url = url
        self.key = key

    def health(self) -> dict[str, object] | None:
        try:
            answer = httpx.get(f"{self.url}/healthz", timeout=10)  # a busy replica answers late, not never
        except httpx.HTTPError:
            return None
        body: dict[str, object] = answer.json()
        return body

    def leads(self) -> bool:
        body = self.health()
        return bool(body and body.get("leader"))


@contextlib.contextmanager
def replicas(tmp_path: Path, count: int, env: dict[str, str]) -> Iterator[list[Replica]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPSWATCH_", "SLACK_"))}
    environ.update(env)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "opswatch", "serve", "--port", "0", "--data-dir", str(tmp_path / f"r{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
        )
        for i in range(count)  # all at once, as a compose file starts them, on a fresh database
    ]
    try:
        started = []
        for process in processes:
            banner = read_banner(process)
            key = banner["OPSWATCH_DSN"].split("//")[1].split("@")[0]
            started.append(Replica(process, banner["url"], key))
        yield started
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate(timeout=10)


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def taken_at(state: Engine) -> float:
    """The wall-clock time the current holder of the replicas' lease took it over."""
    with state.connect() as conn:
        acquired = conn.execute(select(LEASES.c.acquired_at).where(LEASES.c.name == "singletons")).scalar_one()
    assert acquired is not None
    return float(acquired)


def from_iso(value: str) -> float:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_the_leader_killed_mid_heartbeat_is_replaced_within_the_lease_and_each_message_goes_once(
    tmp_path: Path, postgres_url: str
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    state = create_engine_for(postgres_url)
    with SlackReceiver() as slack:
        env = {
            "OPSWATCH_DATABASE_URL": postgres_url,
            "OPSWATCH_ADMIN_TOKEN": TOKEN,
            "OPSWATCH_LEADER_LEASE": str(LEASE),
            "OPSWATCH_LEADER_RENEW": str(RENEW),
            "OPSWATCH_RULES_FILE": str(rules),
            "OPSWATCH_RULES_DEFAULTS": "false",
            "OPSWATCH_RULES_INTERVAL": "1",
            "OPSWATCH_RULES_INGEST_DELAY": "0",
            "OPSWATCH_RULES_GROUP_WAIT": "0",
            "SLACK_WEBHOOK_URL": slack.url,
        }
        with replicas(tmp_path, 3, env) as group:
            assert wait_for(lambda: sum(r.leads() for r in group) == 1, 60)
            leader = next(r for r in group if r.leads())
            followers = [r for r in group if r is not leader]

            # The rule fires in the leader and is announced once.
            assert len(slack.wait_for(1, timeout=60)) == 1
            assert "no-orders" in slack.texts()[0]

            # A heartbeat monitor, created through one follower and checked in through the other.
            admin = {"Authorization": f"Bearer {TOKEN}"}
            created = httpx.post(
                f"{followers[0].url}/api/0/monitors",
                json={"slug": "heartbeat", "schedule": "every 10 seconds", "checkin_margin_seconds": 1},
                headers=admin,
                timeout=10,
            )
            assert created.status_code == 201, created.text
            assert (
                httpx.get(f"{followers[1].url}/ping/{followers[1].key}/heartbeat", timeout=10).status_code
                == 200
            )
            detail = httpx.get(
                f"{followers[1].url}/api/0/monitors/heartbeat", headers=admin, timeout=10
            ).json()
            assert detail["status"] == "ok"
            due = from_iso(detail["next_expected_at"]) + 1  # the margin: missed after this

            # Kill the leader 2 s before the heartbeat is missed: the miss falls in the leaderless gap.
            time.sleep(max(0.0, due - 2 - time.time()))
            assert leader.leads()
            leader.process.kill()
            killed = time.time()
            assert killed < due  # the old leader cannot have judged the heartbeat
            leader.process.wait(10)

            assert wait_for(lambda: any(r.leads() for r in followers), LEASE + SLACK)
            # When the new leader took the lease, as it wrote it (not when this test's poll saw it: the
            # followers' answers come late on a busy machine).
            took_over = taken_at(state)
            assert took_over - killed <= LEASE + SLACK
            assert sum(r.leads() for r in followers) == 1

            # The new leader's clock notices the miss and the failing monitor is announced once.
            assert len(slack.wait_for(2, timeout=30)) == 2
            with state.connect() as conn:
                missed = (
                    conn.execute(
                        select(CHANGES.c.created_at).where(
                            CHANGES.c.slug == "heartbeat", CHANGES.c.kind == "missed"
                        )
                    )
                    .scalars()
                    .all()
                )
            assert len(missed) == 1
            assert due <= missed[0] <= killed + LEASE + SLACK  # the clock resumed within the lease

            # Rules are evaluated again in the new leader, and nothing is announced a second time.
            def evaluated_since_take_over() -> bool:
                with state.connect() as conn:
                    last = conn.execute(
                        select(STATUS.c.last_eval_at).where(STATUS.c.rule == "no-orders")
                    ).scalar()
                return last is not None and last > took_over + 2 * RENEW

            assert wait_for(evaluated_since_take_over, 30, step=0.2)
            time.sleep(2 * RENEW)
            texts = slack.texts()
            assert len(texts) == 2, texts
            assert sum("no-orders" in text for text in texts) == 1
            assert sum("heartbeat" in text for text in texts) == 1
    state.dispose()
