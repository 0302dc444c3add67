"""The alert-rule server settings: read from the environment, bad values named with their variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from opswatch.config import ConfigError
from opswatch.server.config import ServerSettings


def test_it_reads_the_rule_settings_from_the_environment(tmp_path: Path) -> None:
    settings = ServerSettings.load(
        {
            "OPSWATCH_DATA_DIR": str(tmp_path),
            "OPSWATCH_RULES_FILE": str(tmp_path / "rules.toml"),
            "OPSWATCH_RULES_DEFAULTS": "false",
            "OPSWATCH_RULES_INTERVAL": "15",
            "OPSWATCH_RULES_INGEST_DELAY": "0",
            "OPSWATCH_RULES_GROUP_WAIT": "10",
            "OPSWATCH_RULES_GROUP_INTERVAL": "120",
            "OPSWATCH_RULES_REPEAT_INTERVAL": "3600",
        }
    )
    assert settings.rules_file == tmp_path / "rules.toml" and settings.rules_defaults is False
    assert (settings.rules_interval, settings.rules_ingest_delay) == (15, 0)
    assert (settings.rules_group_wait, settings.rules_group_interval, settings.rules_repeat_interval) == (
        10,
        120,
        3600,
    )


def test_it_defaults_to_the_documented_values(tmp_path: Path) -> None:
    settings = ServerSettings.load({"OPSWATCH_DATA_DIR": str(tmp_path)})
    assert settings.rules_file is None and settings.rules_defaults is True
    assert (settings.rules_interval, settings.rules_ingest_delay) == (60, 30)
    assert (settings.rules_group_wait, settings.rules_group_interval, settings.rules_repeat_interval) == (
        30,
        300,
        14_400,
    )


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("OPSWATCH_RULES_INTERVAL", "0", "expected 1..86400"),
        ("OPSWATCH_RULES_INGEST_DELAY", "3601", "expected 0..3600"),
        ("OPSWATCH_RULES_REPEAT_INTERVAL", "59", "expected 60..2592000"),
        ("OPSWATCH_RULES_DEFAULTS", "maybe", "true or false"),
    ],
)
def test_it_names_the_variable_of_a_bad_value(tmp_path: Path, variable: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=variable) as caught:
        ServerSettings.load({"OPSWATCH_DATA_DIR": str(tmp_path), variable: value})
    assert words in str(caught.value)
