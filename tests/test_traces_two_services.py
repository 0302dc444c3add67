"""One request through two real services is one trace: a FastAPI app under uvicorn calls a Flask app under
werkzeug over httpx (each in its own process, shipping to a real opswatch server), and the server's query
API shows both services' spans, nested, and both services' log records under the one ``trace_id``. A third
local server, outside ``trace_propagation_targets``, is called too and gets no trace header."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy_helpers import PYTHON, app_environ, free_port, stop, wait_for_http
from opswatch.server.testing import RunningServer, running_server
from recording_http import TRACE_HEADERS, Recorder

LEDGER = """
import os
from flask import Flask
from werkzeug.serving import make_server
import opswatch
from opswatch.integrations.wsgi import instrument_flask

opswatch.init(service="ledger", console=False, capture_stdlib=False)
app = Flask(__name__)
instrument_flask(app)

@app.get("/ledger/<int:entry>")
def ledger(entry):
    opswatch.logger.info("ledger entry written", entry=entry)
    return {"entry": entry}

@app.get("/health")
def health():
    return {"ok": True}

make_server("127.0.0.1", int(os.environ["PORT"]), app, threaded=True).serve_forever()
"""

CHECKOUT = """
import os
import httpx
import uvicorn
from fastapi import FastAPI
import opswatch
from opswatch.integrations.asgi import OpswatchMiddleware

opswatch.init(service="checkout", console=False, capture_stdlib=False,
              trace_propagation_targets=[os.environ["TARGET"]])
app = FastAPI()
app.add_middleware(OpswatchMiddleware)

@app.get("/checkout")
async def checkout():
    async with httpx.AsyncClient() as client:
        answer = await client.get(os.environ["LEDGER"] + "/ledger/7")
        await client.get(os.environ["OUTSIDE"] + "/audit")
    opswatch.logger.info("checkout done", ledger_status=answer.status_code)
    return {"ok": True}

uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
"""


@pytest.fixture
def ingest(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        yield running


def query(server: RunningServer, sql: str) -> list[list[Any]]:
    answer = httpx.post(f"{server.url}/api/0/query", json={"sql": sql}, headers=server.admin_headers,
                        timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    rows: list[list[Any]] = answer.json()["rows"]
    return rows


def launch(source: str, name: str, tmp_path: Path, ingest: RunningServer, **env: str) -> subprocess.Popen[str]:
    (tmp_path / f"{name}.py").write_text(source)
    return subprocess.Popen(
        [PYTHON, f"{name}.py"], cwd=tmp_path, env=app_environ(ingest, tmp_path / f"spool-{name}", **env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_request_through_fastapi_and_flask_is_one_trace_with_both_services_logs(
    ingest: RunningServer, tmp_path: Path
) -> None:
    outside = Recorder()
    ledger_port, checkout_port = free_port(), free_port()
    ledger_url = f"http://127.0.0.1:{ledger_port}"
    processes = [
        launch(LEDGER, "ledger", tmp_path, ingest, PORT=str(ledger_port)),
        launch(CHECKOUT, "checkout", tmp_path, ingest, PORT=str(checkout_port), LEDGER=ledger_url,
               OUTSIDE=outside.origin, TARGET="^" + re.escape(ledger_url) + "$"),
    ]
    try:
        wait_for_http(f"{ledger_url}/health", processes[0])
        wait_for_http(f"http://127.0.0.1:{checkout_port}/openapi.json", processes[1])
        assert httpx.get(f"http://127.0.0.1:{checkout_port}/checkout", timeout=30).json() == {"ok": True}
        for process in reversed(processes):  # SIGTERM: each delivers what it holds before it ends
            stop(process)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
        outside.close()

    ((trace_id,),) = query(ingest, "SELECT trace_id FROM spans WHERE name = 'GET /checkout'")
    spans = query(ingest, f"""SELECT service, kind, name, span_id, parent_span_id,
        attributes->>'$."server.address"' FROM spans WHERE trace_id = '{trace_id}' ORDER BY timestamp""")
    by_name = {(row[0], row[2]): row for row in spans}
    checkout = by_name[("checkout", "GET /checkout")]
    assert checkout[4] is None  # the trace starts here
    ledger_call, audit_call = [row for row in spans if row[0] == "checkout" and row[1] == "client"]
    assert ledger_call[4] == checkout[3] and audit_call[4] == checkout[3]
    assert ledger_call[5] == "127.0.0.1"
    ledger = by_name[("ledger", "GET /ledger/<int:entry>")]
    assert ledger[1] == "server" and ledger[4] == ledger_call[3]  # continued from the outgoing call
    assert {row[0] for row in spans} == {"checkout", "ledger"}
    logs = query(ingest, f"SELECT service, message FROM logs WHERE trace_id = '{trace_id}' "
                         "AND message IN ('checkout done', 'ledger entry written') ORDER BY service")  # fmt: skip
    assert logs == [["checkout", "checkout done"], ["ledger", "ledger entry written"]]
    assert len(outside.seen) == 1
    assert not set(TRACE_HEADERS) & set(outside.seen[0])
