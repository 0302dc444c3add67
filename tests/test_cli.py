"""The command line's frame: --version, --help, and a one-line reason for bad input."""

from __future__ import annotations

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
