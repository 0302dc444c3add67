"""``opswatch ship``: a program's JSON log lines, from a pipe to a server (the long-running-app way).

The real pino app (``node_clients``) runs in a real ``node`` whose output is piped into ``opswatch ship``,
which forwards it to a real server started by the test and echoes it on its own output. The redaction
and plain-text cases use the transport's in-memory seam to see exactly what leaves the process.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest_helpers import stored
from node_clients import APP, LEVELS, node_env, require_node
from opswatch.cli import main
from opswatch.cli.ship import ship
from opswatch.record import format_timestamp
from opswatch.redact import Redactor
from opswatch.server.testing import running_server
from opswatch.sinks._transport import MemoryTransport
from opswatch.sinks.server import ServerSink


@pytest.mark.slow
def test_it_ships_a_running_apps_pino_lines_and_echoes_them(tmp_path: Path) -> None:
    node = require_node()
    (tmp_path / "app.js").write_text(APP)
    with running_server(tmp_path / "server") as server:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", f'"{node}" app.js | "{sys.executable}" -m opswatch ship'],
            cwd=tmp_path,
            env=node_env(OPSWATCH_DSN=server.dsn, OPSWATCH_SPOOL_DIR=str(tmp_path / "spool")),
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()
        records = {r["message"]: r for r in stored(server) if r.get("logger") == "donations"}
    echoed = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert sorted(line["msg"] for line in echoed) == sorted(LEVELS)  # pino may write its first line last
    assert done.stderr.decode().strip() == "opswatch ship: 6 lines read"
    assert {message: record["level"] for message, record in records.items()} == LEVELS
    assert records["payment failed"]["error"]["type"] == "TypeError"
    for line in echoed:
        assert records[line["msg"]]["timestamp"] == format_timestamp(line["time"] / 1000)


def sent(transport: MemoryTransport) -> list[dict[str, Any]]:
    return [orjson.loads(line) for r in transport.requests for line in gzip.decompress(r.body).splitlines()]


def test_it_redacts_each_line_before_it_leaves_and_ships_plain_text_as_info(tmp_path: Path) -> None:
    transport = MemoryTransport()
    sink = ServerSink("http://key@127.0.0.1:9/1", transport=transport, spool=False)
    lines = [
        b'{"level":30,"time":1764700000003,"msg":"login","password":"hunter2","email":"jane.doe@example.com",'
        b'"card":4111111111111111}\n',
        b"\n",
        b"Server listening on :3000 (card 4111 1111 1111 1111)\n",
    ]
    echo = io.BytesIO()
    try:
        assert ship(io.BytesIO(b"".join(lines)), sink, Redactor(), echo) == 2
        assert sink.flush(30)
    finally:
        sink.close(1)
    pino_line, text_line = sent(transport)
    assert pino_line["password"] == "[REDACTED]"
    assert pino_line["email"] == "j***@example.com"
    assert pino_line["card"] != 4111111111111111
    # pino's shape, for the server to read: its epoch milliseconds (13 digits, Luhn-valid) are no card
    assert (pino_line["msg"], pino_line["level"], pino_line["time"]) == ("login", 30, 1764700000003)
    assert text_line["level"] == "info"
    assert text_line["message"].startswith("Server listening on :3000")
    assert "4111 1111 1111 1111" not in text_line["message"]
    assert echo.getvalue() == b"".join(lines)  # echoed as written, before redaction


def test_it_names_the_setting_when_there_is_no_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ship"]) == 2
    assert "OPSWATCH_DSN" in capsys.readouterr().err


def test_it_keeps_what_it_could_not_deliver_in_the_spool_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = tmp_path / "spool"
    monkeypatch.setenv("OPSWATCH_SPOOL_DIR", str(spool))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"msg":"a","time":1}\n')))
    # port 9 (discard) on 127.0.0.1: nothing listens there, the connection is refused at once
    assert main(["ship", "--dsn", "http://key@127.0.0.1:9/1", "--timeout", "0.5", "--no-echo"]) == 1
    assert "waits in the spool" in capsys.readouterr().err
    assert any(path.is_file() for path in spool.rglob("*"))
