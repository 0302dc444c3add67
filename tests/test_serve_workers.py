"""``opswatch serve --workers 2`` as a user runs it: one owner of the stores, two ingest workers.

Every test starts the real command in a temp data dir and talks to it over HTTP: the real sentry-sdk
and the native SDK (in an app process) send to it; queries, the issue API and the dashboard are asked
through each worker (the worker that holds a connection is found from the kernel's socket tables); a
worker killed with SIGKILL and the owner stopped with SIGTERM lose no event that was answered 2xx.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sentry_sdk

from opswatch.config import ConfigError
from opswatch.server import limits
from opswatch.server.config import ServerSettings
from opswatch.server.store.duckdb import DuckDBStore
from served import read_banner

pytestmark = pytest.mark.slow


class Workers:
    """A running ``opswatch serve --workers 2``: its process, banner and data dir."""

    def __init__(self, process: subprocess.Popen[str], banner: dict[str, str], data_dir: Path) -> None:
        self.process = process
        self.data_dir = data_dir
        self.url = banner["url"]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.token = banner["OPSWATCH_ADMIN_TOKEN"]
        self.dsn = banner["OPSWATCH_DSN"]
        self.key = self.dsn.split("//")[1].split("@")[0]

    def worker_pids(self) -> list[int]:
        """The owner's child processes (its workers), by pid."""
        return sorted(pid for pid in _pids() if _parent(pid) == self.process.pid)

    def wait_for_workers(self, count: int = 2, other_than: tuple[int, ...] = ()) -> list[int]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = [pid for pid in self.worker_pids() if pid not in other_than]
            if len(pids) >= count:
                return pids
            time.sleep(0.05)
        pytest.fail(f"the owner did not have {count} workers within 60 s")

    def query(self, sql: str) -> list[list[Any]]:
        answer = httpx.post(
            f"{self.url}/api/0/query",
            json={"sql": sql},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        rows: list[list[Any]] = answer.json()["rows"]
        return rows

    def post_native(self, records: list[dict[str, Any]], timeout: float = 30) -> httpx.Response:
        return self.post_body(b"".join(orjson.dumps(record) + b"\n" for record in records), timeout)

    def post_body(self, body: bytes, timeout: float = 30) -> httpx.Response:
        return httpx.post(
            f"{self.url}/api/1/events/",
            content=body,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=timeout,
        )


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return -1


def serve_workers(data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPSWATCH_", "SENTRY_"))}
    environ["OPSWATCH_RETENTION_DAYS"] = "36500"
    return subprocess.Popen(
        [sys.executable, "-m", "opswatch", "serve", "--port", "0", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Workers]:
    process = serve_workers(tmp_path / "data", "--workers", "2")
    try:
        running = Workers(process, read_banner(process), tmp_path / "data")
        running.wait_for_workers()
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)


def record(n: int, run: str) -> dict[str, Any]:
    """A native record numbered ``n`` with an event id unique to ``run``."""
    return {
        "event_id": f"{run}{n:024x}",
        "level": "info",
        "message": "Donation completed",
        "operation": "workers.record",
        "n": n,
    }


def owner_of(server: Workers, connection: http.client.HTTPConnection) -> int | None:
    """The worker (pid) that holds the server's end of ``connection``: from ``/proc/net/tcp``, the
    socket inode of the server-side connection, then which worker has that inode open."""
    assert connection.sock is not None
    client_port = connection.sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if local_port == server.port and remote_port == client_port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in server.worker_pids():
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def test_it_stores_sentry_sdk_events_spans_and_sdk_records_once_and_groups_the_errors(
    server: Workers, tmp_path: Path
) -> None:
    sentry_sdk.init(
        dsn=server.dsn,
        release="donations@1.4.2",
        environment="staging",
        auto_session_tracking=False,
        send_client_reports=False,
        default_integrations=False,
        traces_sample_rate=1.0,
    )
    try:
        sent = []
        for _attempt in range(20):
            try:
                {}["card"]
            except KeyError:
                sent.append(sentry_sdk.capture_exception())
        with sentry_sdk.start_transaction(name="POST /donations", op="http.server") as transaction:
            sentry_sdk.start_span(op="db.query", name="INSERT donation").finish()
        sentry_sdk.flush(timeout=30)
    finally:
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.get_global_scope().set_client(None)
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            """
            import opswatch
            opswatch.init(service="donations-api", console=False)
            log = opswatch.get_logger("donations")
            for n in range(300):
                log.info("Donation completed", operation="workers.sdk", n=n)
            opswatch.shutdown()
            """
        )
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPSWATCH_", "SENTRY_"))}
    environ.update(OPSWATCH_DSN=server.dsn, OPSWATCH_SPOOL_DIR=str(tmp_path / "spool"))
    done = subprocess.run([sys.executable, str(app)], env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    ids = ", ".join(f"'{event_id}'" for event_id in sent)
    stored = server.query(f"SELECT event_id, count(*) FROM logs WHERE event_id IN ({ids}) GROUP BY event_id")
    assert sorted(row[0] for row in stored) == sorted(sent) and {row[1] for row in stored} == {1}
    spans = server.query(f"SELECT name FROM spans WHERE trace_id = '{transaction.trace_id}' ORDER BY name")
    assert spans == [["INSERT donation"], ["POST /donations"]]
    numbers = server.query("SELECT n FROM logs WHERE operation = 'workers.sdk' ORDER BY n")
    assert [row[0] for row in numbers] == list(range(300))
    issues = httpx.get(
        f"{server.url}/api/0/issues", headers={"Authorization": f"Bearer {server.token}"}, timeout=30
    ).json()
    key_errors = [issue for issue in issues["items"] if issue["type"] == "KeyError"]
    assert len(key_errors) == 1 and key_errors[0]["count"] == 20


def test_it_answers_ingest_queries_and_the_dashboard_through_each_worker(server: Workers) -> None:
    run = uuid.uuid4().hex[:8]
    auth = {"Authorization": f"Bearer {server.token}"}
    served_by: dict[int, int] = {}
    for attempt in range(64):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.request("GET", "/healthz")
            assert connection.getresponse().read() and True
            worker = owner_of(server, connection)
            assert worker is not None
            if worker in served_by:
                continue
            body = orjson.dumps(record(attempt, run)) + b"\n"
            connection.request("POST", "/api/1/events/", body, {"Authorization": f"Bearer {server.key}"})
            answer = connection.getresponse()
            assert answer.status == 200 and orjson.loads(answer.read())["accepted"] == 1
            sql = orjson.dumps(
                {"sql": f"SELECT n FROM logs WHERE event_id = '{record(attempt, run)['event_id']}'"}
            )
            connection.request("POST", "/api/0/query", sql, {**auth, "Content-Type": "application/json"})
            answer = connection.getresponse()
            assert answer.status == 200 and orjson.loads(answer.read())["rows"] == [[attempt]]
            connection.request("GET", "/issues", headers=auth)
            answer = connection.getresponse()
            assert answer.status == 200 and b"<html" in answer.read().lower()
            assert owner_of(server, connection) == worker  # the same connection, the same worker
            served_by[worker] = attempt
        finally:
            connection.close()
        if len(served_by) == 2:
            break
    assert sorted(served_by) == server.worker_pids()


def send_until_stopped(
    server: Workers, run: str, acknowledged: list[int], stop: threading.Event, first: int
) -> None:
    """Post batches of 20 records until ``stop``; a batch answered 200 goes into ``acknowledged``. A
    batch that failed (connection reset, 503) is sent again, as SDKs do."""
    n = first
    while not stop.is_set():
        batch = [record(n + i, run) for i in range(20)]
        try:
            answer = server.post_native(batch, timeout=10)
        except httpx.HTTPError:
            time.sleep(0.05)
            continue
        if answer.status_code == 200:
            acknowledged.extend(range(n, n + 20))
            n += 20
        else:
            time.sleep(0.05)


def wait_for_answers(acknowledged: list[list[int]], more_than: int) -> None:
    deadline = time.monotonic() + 60
    while sum(map(len, acknowledged)) <= more_than and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(map(len, acknowledged)) > more_than, "the server answered too few batches"


def test_it_loses_no_acknowledged_event_when_a_worker_is_killed(server: Workers) -> None:
    run = uuid.uuid4().hex[:8]
    stop = threading.Event()
    acknowledged: list[list[int]] = [[] for _ in range(8)]
    threads = [
        threading.Thread(target=send_until_stopped, args=(server, run, acknowledged[i], stop, i * 10**6))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for_answers(acknowledged, 200)
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        before = sum(map(len, acknowledged))
        replacement = server.wait_for_workers(2, other_than=(victim,))
        assert victim not in replacement
        wait_for_answers(acknowledged, before + 200)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert (
        "opswatch_worker_restarts_total 1" in httpx.get(f"{server.url}/metrics", timeout=30).text.splitlines()
    )
    answered = sorted(n for numbers in acknowledged for n in numbers)
    assert len(answered) > 100
    stored = server.query(f"SELECT n, count(*) FROM logs WHERE event_id LIKE '{run}%' GROUP BY n")
    counts = {row[0]: row[1] for row in stored}
    assert [n for n in answered if n not in counts] == []  # every answered event is stored
    assert {count for count in counts.values()} == {1}  # and once, retried or not


def test_it_drains_the_workers_and_commits_everything_answered_on_sigterm(server: Workers) -> None:
    run = uuid.uuid4().hex[:8]
    stop = threading.Event()
    acknowledged: list[list[int]] = [[] for _ in range(8)]
    threads = [
        threading.Thread(target=send_until_stopped, args=(server, run, acknowledged[i], stop, i * 10**6))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    workers = server.worker_pids()
    try:
        wait_for_answers(acknowledged, 200)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert all(not Path(f"/proc/{pid}").exists() or _parent(pid) != server.process.pid for pid in workers)
    answered = sorted(n for numbers in acknowledged for n in numbers)
    assert len(answered) > 100
    with DuckDBStore(server.data_dir / "events.duckdb", read_only=True) as store:
        result = store.query(
            f"SELECT n, count(*) FROM logs WHERE event_id LIKE '{run}%' GROUP BY n",
            max_rows=10**6,
            timeout=60,
        )
    counts = {row[0]: row[1] for row in result.rows}
    assert [n for n in answered if n not in counts] == []
    assert set(counts.values()) == {1}


def test_it_shows_what_the_workers_counted_in_one_scrape(server: Workers) -> None:
    run = uuid.uuid4().hex[:8]
    for n in range(12):  # new connections: both workers take some
        assert server.post_native([record(n, run)]).status_code == 200
    assert server.post_body(b"not json\n").status_code == 400
    wanted = (
        'opswatch_ingest_requests_total{endpoint="native",status="200"} 12',
        'opswatch_ingest_requests_total{endpoint="native",status="400"} 1',
    )
    deadline = time.monotonic() + 30
    scrape = ""
    while time.monotonic() < deadline:
        scrape = httpx.get(f"{server.url}/metrics", timeout=30).text
        if all(line in scrape.splitlines() for line in wanted):
            break
        time.sleep(0.2)
    assert [line for line in wanted if line not in scrape.splitlines()] == []


def test_it_refuses_a_revoked_key_in_every_worker_at_once(server: Workers) -> None:
    run = uuid.uuid4().hex[:8]
    for n in range(8):  # each worker has the key in its cache now
        assert server.post_native([record(n, run)]).status_code == 200
    revoked = httpx.post(
        f"{server.url}/api/0/keys/{server.key}/revoke",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    assert revoked.status_code == 200, revoked.text
    # The owner's notice, not the caches' 60 s, ends the key's life. It reaches each worker on its own
    # channel, so one 401 does not yet say the other worker has read it: wait for a run of them.
    deadline, refused = time.monotonic() + 30, 0
    while refused < 8 and time.monotonic() < deadline:
        refused = refused + 1 if server.post_native([record(99, run)]).status_code == 401 else 0
        if not refused:
            time.sleep(0.05)
    answers = {server.post_native([record(100 + n, run)]).status_code for n in range(8)}
    assert answers == {401}


def test_it_takes_up_to_max_workers_and_names_the_setting_past_it(tmp_path: Path) -> None:
    assert (
        ServerSettings.load({}, data_dir=tmp_path, workers=limits.MAX_WORKERS).workers == limits.MAX_WORKERS
    )
    with pytest.raises(ConfigError, match="workers"):
        ServerSettings.load({}, data_dir=tmp_path, workers=limits.MAX_WORKERS + 1)
    with pytest.raises(ConfigError, match="OPSWATCH_WORKERS"):
        ServerSettings.load({"OPSWATCH_WORKERS": "0"}, data_dir=tmp_path)


def test_it_names_the_setting_when_workers_is_out_of_range(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "opswatch",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--workers",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "workers" in done.stderr
