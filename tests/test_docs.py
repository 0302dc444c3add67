"""Docs that cannot drift: every setting is documented, and the README's commands are the ones CI runs."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from opswatch.config import _FROM_ENV, Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme_table() -> None:
    for field in dataclasses.fields(Settings):
        assert f"| `{field.name}` |" in README, field.name


def test_every_environment_variable_is_in_the_readme() -> None:
    for variables, _kind in _FROM_ENV.values():
        for variable in variables:
            assert f"`{variable}`" in README, variable


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_test_command() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line for line in first_block.group(1).splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    run, test = commands
    assert "opswatch" in run and ("serve" in run or "demo" in run)
    assert "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text()
