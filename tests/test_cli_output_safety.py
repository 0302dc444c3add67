"""Stored text never drives the terminal or a spreadsheet: what a hostile client sent is printed by
``query``, ``issues`` and ``tail`` without its escape sequences and control characters, markup is printed
as text, and ``--format csv`` guards cells that a spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from opswatch.record import format_timestamp
from opswatch.server.testing import RunningServer, running_server

pytestmark = pytest.mark.slow

#: Rich markup, a clipboard write (OSC 52), a screen clear, a window title, a carriage return that
#: would overwrite the line, an 8-bit CSI and a right-to-left override.
HOSTILE = (
    "[/] [link=https://evil.example]details[/link] [bold red]x"
    "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x1b[H\x1b]0;pwned\x1b\\\rfake\x9b31m\u202egpj.exe"
)
#: What is left of it to print.
SHOWN = "[/] [link=https://evil.example]details[/link] [bold red]xfakegpj.exe"
FORMULAS = ['=HYPERLINK("http://evil.example")', "+1+1", "-2+3", "@SUM(A1)", "\tstart", "\r=1"]


def event(n: int, message: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"f{n:031x}",
        "timestamp": format_timestamp(time.time()),
        "level": "info",
        "message": message,
        "operation": "safety.check",
        **fields,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("safety")) as running:
        records = [
            event(1, HOSTILE, level="error", error={"type": "Bad\x1b[2JError", "message": HOSTILE}),
            event(2, HOSTILE, note=HOSTILE),
            *(event(10 + i, formula, amount=-5) for i, formula in enumerate(FORMULAS)),
        ]
        answer = httpx.post(
            f"{running.url}/api/{running.project_id}/events/",
            content=b"".join(orjson.dumps(record) + b"\n" for record in records),
            headers={"Authorization": f"Bearer {running.key}"},
            trust_env=False,
        )
        assert answer.status_code == 200 and answer.json()["accepted"] == len(records), answer.text
        yield running


def opswatch(server: RunningServer, *argv: str, columns: int | None = None) -> str:
    """``opswatch *argv`` piped; its stdout and stderr together (both reach the terminal)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPSWATCH_") and k != "COLUMNS"}
    environ |= {"OPSWATCH_URL": server.url, "OPSWATCH_ADMIN_TOKEN": server.admin_token}
    if columns is not None:
        environ["COLUMNS"] = str(columns)
    result = subprocess.run(
        [sys.executable, "-m", "opswatch", *argv], capture_output=True, text=True, env=environ, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def assert_inert(output: str) -> None:
    controls = [c for c in output if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0]
    assert controls == [] and "\u202e" not in output


def test_the_server_kept_the_hostile_text_as_sent(server: RunningServer) -> None:
    stored = httpx.get(
        f"{server.url}/api/0/events", params={"operation": "safety.check", "limit": 100},
        headers={"Authorization": f"Bearer {server.admin_token}"}, trust_env=False,
    ).json()["events"]  # fmt: skip
    assert HOSTILE in {e["message"] for e in stored}  # so the CLI tests below face the raw sequences


@pytest.mark.parametrize("columns", [None, 80])
def test_it_prints_query_answers_inert(server: RunningServer, columns: int | None) -> None:
    out = opswatch(server, "query", "SELECT message, note FROM logs WHERE note IS NOT NULL", columns=columns)
    assert_inert(out)
    assert "[/]" in out and "[bold red]xfakegpj.exe" in out


def test_it_prints_records_blocks_inert(server: RunningServer) -> None:
    out = opswatch(server, "query", "SELECT * FROM logs WHERE note IS NOT NULL", columns=60)
    assert out.startswith("-[ row 1 ]")
    assert_inert(out)


def test_it_prints_issues_inert(server: RunningServer) -> None:
    listing = opswatch(server, "issues", "list")
    assert_inert(listing)
    assert "[/] [link=https://evil.example]" in listing  # markup is text, not a crash
    shown = opswatch(server, "issues", "show", "1")
    assert_inert(shown)
    assert f"BadError: {SHOWN}" in shown


def test_it_prints_tail_inert(server: RunningServer) -> None:
    out = opswatch(server, "tail", "--operation", "safety.check")
    assert_inert(out)
    assert SHOWN in out


def test_it_escapes_c1_controls_in_json(server: RunningServer) -> None:
    out = opswatch(server, "tail", "--operation", "safety.check", "--format", "json")
    assert_inert(out.replace("\x1b", "").replace("\r", "").replace("\x07", ""))  # JSON escapes C0 itself
    messages = {orjson.loads(line)["message"] for line in out.splitlines()}
    assert HOSTILE in messages  # the data is whole for programs


def test_it_guards_csv_cells_against_formulas(server: RunningServer) -> None:
    out = opswatch(server, "query", "--format", "csv", "SELECT message, amount FROM logs WHERE amount < 0")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["message", "amount"]
    assert sorted(message for message, _ in rows[1:]) == sorted(["'" + f.lstrip("\r") for f in FORMULAS])
    assert {amount for _, amount in rows[1:]} == {"-5"}  # numbers are numbers, not text to guard


def test_it_prints_a_servers_refusal_inert(server: RunningServer) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPSWATCH_")}
    environ |= {"OPSWATCH_URL": server.url, "OPSWATCH_ADMIN_TOKEN": server.admin_token}
    result = subprocess.run(
        [sys.executable, "-m", "opswatch", "query", 'SELECT "\x1b]0;pwned\x07" FROM logs'],
        capture_output=True, text=True, env=environ, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.startswith("opswatch: ")
    assert_inert(result.stderr)
    assert len(result.stderr.splitlines()) == 1
