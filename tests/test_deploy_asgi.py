"""A FastAPI app under uvicorn and gunicorn, stopped by SIGTERM while requests flow, counted on a real server.

Issue 15 measured 332 of 600 records stored in this shape: uvicorn ends a worker stopped by SIGTERM by
raising the signal again with its default action, so ``atexit`` never runs. Each request here logs one
numbered record before answering; every answered request must be stored, once, whichever way the app
hooks the stop (the middleware at lifespan shutdown, the documented hook in its own lifespan, or no
hook at all under gunicorn, where opswatch's SIGTERM handler runs when uvicorn raises the signal again).
"""

from __future__ import annotations

import subprocess
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from deploy_helpers import (
    PYTHON,
    app_environ,
    free_port,
    ingest,
    spooled,
    stop,
    stored_numbers,
    wait_for_http,
    wait_until,
)
from opswatch.server.testing import RunningServer

__all__ = ["ingest"]  # the fixture, imported for the tests below

APP = textwrap.dedent(
    """
    import contextlib
    import os

    from fastapi import FastAPI

    import opswatch
    from opswatch.integrations.asgi import OpswatchMiddleware, flush_on_shutdown

    opswatch.init(console=False)
    log = opswatch.get_logger("app")
    HOOK = os.environ["DEPLOY_HOOK"]


    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if HOOK == "hook":
            flush_on_shutdown()


    app = FastAPI(lifespan=lifespan)
    if HOOK == "middleware":
        app.add_middleware(OpswatchMiddleware)


    @app.get("/hit/{n}")
    async def hit(n: int):
        log.info("hit", operation="deploy.record", n=n)
        return {"pid": os.getpid()}
    """
)


class Load:
    """Requests numbered 0, 1, 2 ... from two threads until the app stops answering."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent: set[int] = set()
        self.answered: dict[int, int] = {}  # n -> pid of the worker that answered
        self.stopped = threading.Event()
        self._next = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while not self.stopped.is_set():
                with self._lock:
                    n, self._next = self._next, self._next + 1
                    self.sent.add(n)
                try:  # a new connection each time, so that both workers get requests
                    answer = client.get(f"{self.url}/hit/{n}", headers={"Connection": "close"})
                except httpx.HTTPError:
                    time.sleep(0.01)
                    continue
                if answer.status_code == 200:
                    with self._lock:
                        self.answered[n] = answer.json()["pid"]

    def finish(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(15)


def command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [PYTHON, "-m", "uvicorn", "app:app", "--workers", "2", "--port", str(port), "--no-access-log"]
    return [
        PYTHON,
        "-m",
        "gunicorn",
        "app:app",
        "--worker-class",
        "uvicorn_worker.UvicornWorker",
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "10",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("server", "hook"),
    [("uvicorn", "middleware"), ("uvicorn", "hook"), ("gunicorn", "middleware"), ("gunicorn", "none")],
)
def test_it_stores_every_answered_request_when_sigterm_stops_the_app(
    ingest: RunningServer, tmp_path: Path, server: str, hook: str
) -> None:
    spool = tmp_path / "spool"
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    process = subprocess.Popen(
        command(server, port),
        cwd=tmp_path,
        env=app_environ(ingest, spool, DEPLOY_HOOK=hook),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/openapi.json", process)
        load = Load(url)
        try:
            started = time.monotonic()
            assert wait_until(
                lambda: len(load.answered) >= 300
                and (len(set(load.answered.values())) == 2 or time.monotonic() - started > 8),
                60,  # 300 answers take a few seconds, longer on a loaded machine
            )
            _, err = stop(process)  # while requests flow
        finally:
            load.finish()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    stored = stored_numbers(ingest)
    answered = set(load.answered)
    print(f"\n[measured] {server}, hook={hook}: sent {len(load.sent)}, answered {len(answered)}, stored {len(stored)}")
    assert len(stored) == len(set(stored)), "a record was stored twice"
    assert answered <= set(stored), f"{len(answered - set(stored))} answered requests not stored\n{err}"
    assert set(stored) <= load.sent
    assert spooled(spool) == []  # delivered before the workers ended, not left for the next run
