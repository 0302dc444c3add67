"""The command line's frame: --version, --help, and a one-line reason for bad input."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import opswatch
from opswatch.cli import main


def test_it_prints_the_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "opswatch", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"opswatch {opswatch.__version__}"


def test_it_prints_help_without_a_command(capsys: object) -> None:
    assert main([]) == 0


def test_an_unknown_command_exits_non_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "opswatch", "no-such-command"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "invalid choice" in result.stderr


def test_it_says_how_to_reach_a_server_when_none_answers() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPSWATCH_")}
    environ |= {"OPSWATCH_URL": f"http://127.0.0.1:{port}", "OPSWATCH_ADMIN_TOKEN": "t"}
    result = subprocess.run(
        [sys.executable, "-m", "opswatch", "issues", "list"], capture_output=True, text=True, env=environ
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"cannot reach the server at http://127.0.0.1:{port}" in line
    assert "opswatch serve" in line and "--url" in line and "OPSWATCH_URL" in line
