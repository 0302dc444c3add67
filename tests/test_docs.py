"""Docs that cannot drift: every setting is documented, and the README's commands are the ones CI runs."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from opswatch.config import _FROM_ENV, Settings
from opswatch.server import config as server_config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SRC = ROOT / "src" / "opswatch"


def test_every_setting_is_in_the_readme_table() -> None:
    for field in dataclasses.fields(Settings):
        assert f"| `{field.name}` |" in README, field.name


def test_every_environment_variable_is_in_the_readme() -> None:
    for variables, _kind in _FROM_ENV.values():
        for variable in variables:
            assert f"`{variable}`" in README, variable


def server_table() -> str:
    """The README's table of server settings (from its heading to the next heading)."""
    found = re.search(r"### Server settings\n(.*?)\n#", README, re.S)
    assert found is not None, "the README has no 'Server settings' section"
    return found.group(1)


def test_every_server_setting_is_in_the_readmes_server_table() -> None:
    table = server_table()
    for field in dataclasses.fields(server_config.ServerSettings):
        assert f"| `{field.name}` |" in table, field.name


def test_every_server_environment_variable_is_in_the_readmes_server_table() -> None:
    table = server_table()
    for name, variable in server_config._FROM_ENV.items():
        assert f"| `{name}` | `{variable}` |" in table, variable


def test_every_environment_variable_the_cli_reads_is_in_the_readme() -> None:
    read = set()
    for path in (SRC / "cli").rglob("*.py"):
        read |= set(re.findall(r"""environ(?:\.get\(|\[)["']([A-Z][A-Z0-9_]+)["']""", path.read_text()))
    assert "OPSWATCH_URL" in read  # the pattern still finds what the CLI reads
    for variable in sorted(read):
        assert f"`{variable}`" in README or f"`${variable}`" in README, variable


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_test_command() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line for line in first_block.group(1).splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    run, test = commands
    assert "opswatch" in run and ("serve" in run or "demo" in run)
    assert "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text()
