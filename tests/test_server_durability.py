"""A 2xx answer means durable: 100,000 events sent while the server is killed with SIGKILL twice.

The server runs as ``opswatch serve`` in its own process; the client (``durability_client.py``) resends
each batch until it is acknowledged and writes down what was acknowledged. Afterwards the store holds
every acknowledged event exactly once (events committed but not acknowledged before a kill were resent
and must not be stored twice).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opswatch.server.config import ServerSettings
from opswatch.server.state.base import create_engine_for
from opswatch.server.state.projects import list_projects
from opswatch.server.store.duckdb import DuckDBStore

pytestmark = pytest.mark.slow

TOTAL = 100_000
BATCH = 500
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSWATCH_")}
    return subprocess.Popen(
        [sys.executable, "-m", "opswatch", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def acked_count(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def wait_until(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("total", "kills", "options"),
    [
        (TOTAL, (TOTAL // 4, TOTAL // 2), ()),
        # Undated events are dated on arrival: a resend after a kill carries another timestamp and must
        # still be stored once (idempotency by project and event id, not by time).
        (20_000, (5_000, 10_000), ("--no-timestamp",)),
    ],
    ids=["dated", "undated"],
)
def test_it_stores_every_acknowledged_event_exactly_once_across_two_kills(
    tmp_path: Path, total: int, kills: tuple[int, ...], options: tuple[str, ...]
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    ServerSettings.load(environ={}, data_dir=data_dir)  # the data dir and admin token, as serve makes them
    server = start_server(data_dir, port)
    acked = tmp_path / "acked.txt"
    client: subprocess.Popen[str] | None = None
    try:
        wait_until(lambda: (data_dir / "state.db").exists() and _key(data_dir) is not None, 60)
        key = _key(data_dir)
        client = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "durability_client.py"),
                f"http://127.0.0.1:{port}",
                str(key),
                str(total),
                str(BATCH),
                str(acked),
                *options,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for threshold in kills:
            wait_until(lambda threshold=threshold: acked_count(acked) >= threshold, 120)
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            server = start_server(data_dir, port)
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "done"
        assert client.wait(30) == 0
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    finally:
        for process in (client, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        if client is not None and client.stdout is not None:
            client.stdout.close()

    acknowledged = acked.read_text().split()
    assert len(acknowledged) == total
    with DuckDBStore(data_dir / "events.duckdb", read_only=True) as store:
        result = store.query(
            "SELECT count(*), count(DISTINCT event_id) FROM events WHERE operation = 'durability.test'",
            max_rows=1,
            timeout=60,
        )
        ((stored, distinct),) = result.rows
        assert stored == distinct == total
        ids = store.query(
            "SELECT event_id FROM events WHERE operation = 'durability.test'", max_rows=total + 1, timeout=60
        )
    assert {row[0] for row in ids.rows} == set(acknowledged)


def _key(data_dir: Path) -> str | None:
    engine = create_engine_for(f"sqlite:///{data_dir / 'state.db'}")
    try:
        projects = list_projects(engine)
    except Exception:
        return None
    finally:
        engine.dispose()
    return projects[0].keys[0].key if projects and projects[0].keys else None
