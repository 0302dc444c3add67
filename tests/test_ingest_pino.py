"""pino, the Node.js logger, shipping its own NDJSON to the native endpoint, exactly as the README says.

The real ``pino`` from npm (``tests/node/package.json``, installed by ``.ci/run``) runs in a real ``node``
process whose output is piped into ``curl`` (through ``tee``, so the test knows every line pino wrote),
posting to a real server started by the test. The store then holds pino's levels on opswatch's scale,
``msg`` as the message, ``time`` as the timestamp, ``err`` as an error with its frames and its cause, and
the child logger's bindings as fields. Without ``node`` or the package the tests skip with the reason on a
developer's machine, and fail under ``CI=true``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from ingest_helpers import issues, stored
from node_clients import APP, CALL_LINE, LEVELS, THROW_LINE, node_env, require_node
from opswatch.record import format_timestamp
from opswatch.server.testing import RunningServer, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node() -> str:
    return require_node("curl")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("pino")) as running:
        yield running


@pytest.fixture(scope="module")
def shipped(node: str, server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the app once with its output piped to the server: the lines pino wrote and curl's answer."""
    folder = tmp_path_factory.mktemp("app")
    (folder / "app.js").write_text(APP)
    url = f"{server.url}/api/{server.project_id}/events/"
    pipe = (
        f'"{node}" app.js | tee lines.ndjson '
        f'| curl -sS --fail-with-body --data-binary @- -H "Authorization: Bearer $OPSWATCH_KEY" "{url}"'
    )
    env = node_env(OPSWATCH_KEY=server.key)
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipe], cwd=folder, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode() + done.stdout.decode()
    lines = [orjson.loads(line) for line in (folder / "lines.ndjson").read_bytes().splitlines()]
    return {"lines": lines, "answer": orjson.loads(done.stdout), "folder": folder}


def by_message(server: RunningServer) -> dict[str, dict[str, Any]]:
    return {r["message"]: r for r in stored(server) if r.get("logger") == "donations"}


def test_it_takes_every_line_pino_wrote(shipped: dict[str, Any]) -> None:
    assert len(shipped["lines"]) == 6
    assert shipped["answer"] == {"accepted": 6, "duplicates": 0, "rejected": []}


def test_it_reads_pinos_level_numbers_on_pinos_scale(server: RunningServer, shipped: dict[str, Any]) -> None:
    assert sorted(line["level"] for line in shipped["lines"]) == [10, 20, 30, 40, 50, 60]
    levels = {message: record["level"] for message, record in by_message(server).items()}
    assert levels == LEVELS


def test_it_dates_each_line_at_pinos_time(server: RunningServer, shipped: dict[str, Any]) -> None:
    records = by_message(server)
    for line in shipped["lines"]:
        assert records[line["msg"]]["timestamp"] == format_timestamp(line["time"] / 1000)


def test_it_keeps_pid_host_logger_and_the_child_bindings(server: RunningServer, shipped: dict[str, Any]) -> None:
    [first] = [line for line in shipped["lines"] if line["msg"] == "donation don-42 received"]
    record = by_message(server)["donation don-42 received"]
    assert record["pid"] == first["pid"]
    assert record["host"] == first["hostname"]
    assert record["logger"] == "donations"
    assert record["requestId"] == "req-81" and record["churchId"] == 7
    assert by_message(server)["cache miss"]["key"] == "church:7"
    assert "msg" not in record and "time" not in record and "hostname" not in record


def test_it_stores_err_as_an_error_with_frames_and_its_cause(
    server: RunningServer, shipped: dict[str, Any]
) -> None:
    record = by_message(server)["payment failed"]
    assert record["kind"] == "error"
    error = record["error"]
    assert error["type"] == "TypeError"
    assert error["message"] == "card declined"
    assert error["code"] == "E_CARD"
    app = str(shipped["folder"] / "app.js")
    *_, caller, raised = [frame for frame in error["stack"] if frame["in_app"]]
    assert (raised["file"], raised["line"], raised["function"]) == (app, THROW_LINE, "chargeCard")
    assert (caller["file"], caller["line"]) == (app, CALL_LINE)
    assert all(not frame["in_app"] for frame in error["stack"] if frame["file"].startswith("node:"))
    cause = error["cause"]
    assert (cause["type"], cause["message"]) == ("Error", "socket hang up")
    assert cause["stack"][-1]["line"] == THROW_LINE - 1
    assert "err" not in record


def test_it_redacts_pino_lines_like_any_other(server: RunningServer, shipped: dict[str, Any]) -> None:
    record = by_message(server)["payment failed"]
    assert record["donorEmail"] == "j***@example.com"
    assert b"jane.doe@example.com" not in orjson.dumps(record)


def test_it_opens_an_issue_for_the_error_line(server: RunningServer, shipped: dict[str, Any]) -> None:
    titles = sorted(issue["title"] for issue in issues(server))
    assert titles == ["TypeError: card declined", "ledger unreachable"]


def test_it_takes_the_same_lines_again_as_duplicates(server: RunningServer, shipped: dict[str, Any]) -> None:
    answer = httpx.post(
        f"{server.url}/api/{server.project_id}/events/",
        content=(shipped["folder"] / "lines.ndjson").read_bytes(),
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=10,
        trust_env=False,
    )
    assert answer.json() == {"accepted": 0, "duplicates": 6, "rejected": []}
