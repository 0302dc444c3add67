"""The cast of the deployment tests: a real opswatch server, apps started as real processes, and counts.

"The server" is ``opswatch.server.testing.running_server`` in the test process. "The app" is a program
written to the test's tmp dir and started the way people start it (``uvicorn``, ``gunicorn``, ``python``),
with ``OPSWATCH_DSN`` pointing at the server and its own spool directory (the apps call ``init(console=False)``). Every record the app logs
has the operation ``deploy.record`` and a number ``n``, so the test counts exactly what was stored.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opswatch.server.testing import RunningServer, running_server

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def ingest(tmp_path: Path) -> Iterator[RunningServer]:
    """The server the apps ship to."""
    with running_server(tmp_path / "server") as server:
        yield server


def app_environ(server: RunningServer, spool: Path, **extra: str) -> dict[str, str]:
    """The app's environment: the DSN, its spool, and this checkout on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSWATCH_", "SENTRY_"))}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env.update(
        OPSWATCH_DSN=server.dsn,
        OPSWATCH_SPOOL_DIR=str(spool),
        PYTHONPATH=os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def run_app(
    server: RunningServer, tmp_path: Path, source: str, *args: str, name: str = "app.py", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Write ``source`` as ``name`` in ``tmp_path`` and run it to its end with ``python``, shipping to
    ``server`` and spooling to ``tmp_path / "spool"``; its exit code and output."""
    app = tmp_path / name
    app.write_text(source)
    return subprocess.run(
        [PYTHON, str(app), *args],
        env=app_environ(server, tmp_path / "spool"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stored_numbers(server: RunningServer) -> list[int]:
    """The ``n`` of every stored ``deploy.record`` record, sorted (a repeat would show twice)."""
    result = server.ctx.store.query(
        "SELECT n FROM logs WHERE operation = 'deploy.record'", max_rows=1_000_000, timeout=60
    )
    return sorted(int(row[0]) for row in result.rows)


def count_stored(server: RunningServer, where: str = "operation = 'deploy.record'") -> int:
    result = server.ctx.store.query(f"SELECT count(*) FROM logs WHERE {where}", max_rows=1, timeout=60)
    return int(result.rows[0][0])


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def wait_for_http(url: str, process: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    """Wait until ``url`` answers; fail with the app's output when it dies or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the app ended with {process.returncode} before answering:\n{out}\n{err}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"the app never answered {url}")


def spooled(spool: Path) -> list[str]:
    """Batch files left in a spool directory."""
    if not spool.exists():
        return []
    return sorted(name for name in os.listdir(spool) if ".ndjson.gz" in name and not name.startswith("."))


def stop(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 60.0) -> tuple[str, str]:
    """Send ``sig`` and wait for the process to end; its output."""
    process.send_signal(sig)
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the app did not stop within {timeout} s after signal {sig}:\n{out}\n{err}")
