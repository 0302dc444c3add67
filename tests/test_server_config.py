"""Server settings: arguments > environment > defaults, errors that name the setting, the admin token."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from opswatch.config import ConfigError
from opswatch.server.config import _FROM_ENV, ServerSettings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_it_has_safe_defaults(tmp_path: Path) -> None:
    settings = ServerSettings.load(environ={}, data_dir=tmp_path)
    assert settings.host == "127.0.0.1"
    assert settings.port == 8321
    assert settings.retention_days == 30
    assert settings.redact is True
    assert settings.state_url == f"sqlite:///{tmp_path / 'state.db'}"
    assert settings.events_path == tmp_path / "events.duckdb"
    assert settings.base_url == "http://127.0.0.1:8321"


def test_it_defaults_the_data_dir_to_opswatch_data_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = ServerSettings.load(environ={})
    assert settings.data_dir == Path("opswatch-data")
    assert (tmp_path / "opswatch-data" / "admin_token").exists()


def test_it_reads_the_environment_and_lets_arguments_win(tmp_path: Path) -> None:
    environ = {
        "OPSWATCH_DATA_DIR": str(tmp_path / "from-env"),
        "OPSWATCH_PORT": "9000",
        "OPSWATCH_RETENTION_DAYS": "7",
        "OPSWATCH_ADMIN_TOKEN": "env-token",
        "OPSWATCH_SERVER_REDACT": "false",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
    }
    settings = ServerSettings.load(environ=environ, port=9100, data_dir=None)
    assert settings.port == 9100
    assert settings.data_dir == tmp_path / "from-env"
    assert settings.retention_days == 7
    assert settings.admin_token == "env-token"
    assert settings.redact is False
    assert settings.slack_webhook_url == "https://hooks.slack.com/services/T/B/x"
    assert not (tmp_path / "from-env" / "admin_token").exists()  # a given token is not written


@pytest.mark.parametrize(
    ("environ", "overrides", "named"),
    [
        ({"OPSWATCH_PORT": "eighty"}, {}, "port (from OPSWATCH_PORT)"),
        ({}, {"port": 70000}, "port"),
        ({"OPSWATCH_RETENTION_DAYS": "0"}, {}, "retention_days (from OPSWATCH_RETENTION_DAYS)"),
        ({"OPSWATCH_PUBLIC_URL": "ftp://x"}, {}, "public_url (from OPSWATCH_PUBLIC_URL)"),
        ({"SLACK_WEBHOOK_URL": "not a url"}, {}, "slack_webhook_url (from SLACK_WEBHOOK_URL)"),
        ({"OPSWATCH_SERVER_REDACT": "maybe"}, {}, "redact (from OPSWATCH_SERVER_REDACT)"),
        ({}, {"colour": "blue"}, "colour"),
    ],
)
def test_it_names_the_bad_setting(
    tmp_path: Path, environ: dict[str, str], overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        ServerSettings.load(environ=environ, data_dir=tmp_path, **overrides)
    assert raised.value.setting == named


def test_it_generates_the_admin_token_once_and_keeps_it_private(tmp_path: Path) -> None:
    first = ServerSettings.load(environ={}, data_dir=tmp_path)
    again = ServerSettings.load(environ={}, data_dir=tmp_path)
    assert len(first.admin_token) >= 40
    assert first.admin_token[0].isalnum()  # never read as a command-line option (``--token -x``)
    assert again.admin_token == first.admin_token
    mode = stat.S_IMODE((tmp_path / "admin_token").stat().st_mode)
    assert mode == 0o600


def test_it_builds_dsns_clients_can_reach(tmp_path: Path) -> None:
    everywhere = ServerSettings.load(environ={}, data_dir=tmp_path, host="0.0.0.0", port=8400)
    assert everywhere.dsn("abc", 1) == "http://abc@127.0.0.1:8400/1"
    public = ServerSettings.load(environ={}, data_dir=tmp_path, public_url="https://ops.example.org/watch/")
    assert public.dsn("abc", 2) == "https://abc@ops.example.org/watch/2"
    ipv6 = ServerSettings.load(environ={}, data_dir=tmp_path, host="::1", port=8321)
    assert ipv6.base_url == "http://[::1]:8321"


def test_every_server_setting_and_variable_is_in_the_readme() -> None:
    for field in dataclasses.fields(ServerSettings):
        assert f"| `{field.name}` |" in README, field.name
    for variable in _FROM_ENV.values():
        assert f"`{variable}`" in README, variable
