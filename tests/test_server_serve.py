"""``opswatch serve`` as a user runs it: a separate process, its banner, graceful stop, bad settings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest_helpers import donation, http, ndjson
from opswatch.server.store.duckdb import DuckDBStore
from served import read_banner

pytestmark = pytest.mark.slow


def serve(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPSWATCH_")}
    environ.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "opswatch", "serve", "--port", "0", "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    process = serve(tmp_path / "data")
    try:
        yield process, read_banner(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_it_prints_the_dsn_and_token_and_takes_events_at_that_dsn(
    running: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path
) -> None:
    process, banner = running
    dsn = banner["OPSWATCH_DSN"]
    key = dsn.split("//")[1].split("@")[0]
    assert dsn == f"{banner['url'].replace('://', f'://{key}@')}/1"
    assert dsn.startswith("http://") and "@127.0.0.1:" in dsn
    assert len(banner["OPSWATCH_ADMIN_TOKEN"]) >= 40
    record = donation()
    answer = http().post(
        f"{banner['url']}/api/1/events/", content=ndjson([record]), headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    with DuckDBStore(tmp_path / "data" / "events.duckdb", read_only=True) as store:
        assert record["event_id"] in store.get_events([record["event_id"]])


def test_it_says_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.run(
            [sys.executable, "-m", "opswatch", "serve", "--port", str(port), "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in process.stderr


def test_it_names_a_bad_setting_from_the_environment(tmp_path: Path) -> None:
    process = serve(tmp_path, env={"OPSWATCH_RETENTION_DAYS": "forever"})
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "retention_days (from OPSWATCH_RETENTION_DAYS)" in err
