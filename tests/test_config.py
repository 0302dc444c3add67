"""Settings: arguments > environment > defaults; bad values fail at init() naming the setting."""

from __future__ import annotations

import pytest

import opswatch
from opswatch.config import Dsn, Settings


def test_it_lets_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSWATCH_SERVICE", "from-env")
    monkeypatch.setenv("OPSWATCH_ENVIRONMENT", "staging")
    settings = Settings.load(service="from-arg")
    assert settings.service == "from-arg"
    assert settings.environment == "staging"


def test_it_falls_back_to_the_plain_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    assert Settings.load().is_production


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"level": "verbose"}, "level"),
        ({"format": "xml"}, "format"),
        ({"dsn": "not a dsn"}, "dsn"),
        ({"dsn": "http://127.0.0.1:8321/1"}, "dsn"),
        ({"dsn": "http://key@127.0.0.1:8321"}, "dsn"),
        ({"slack_webhook_url": "hooks.slack.com/x"}, "slack_webhook_url"),
        ({"redact_mode": "blank"}, "redact_mode"),
        ({"mask_emails": "maybe"}, "mask_emails"),
        ({"colour": True}, "colour"),
        ({"stream": 42}, "stream"),
    ],
)
def test_it_fails_at_init_naming_a_bad_setting(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(opswatch.ConfigError) as caught:
        opswatch.init(**overrides)
    assert caught.value.setting.startswith(named)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"dsn": "ftp://sekrit@127.0.0.1/1"},
        {"dsn": "http://sekrit@[::1/1"},
        {"slack_webhook_url": "hooks.slack.com/services/T0/B0/sekrit"},
        {"slack_webhook_url": "https://[sekrit"},
        {"alert_webhook_url": "https:///hooks/sekrit"},
    ],
)
def test_it_never_echoes_a_secret_bearing_url_in_the_error(overrides: dict[str, object]) -> None:
    with pytest.raises(opswatch.ConfigError) as caught:
        opswatch.init(**overrides)
    (named,) = overrides
    assert caught.value.setting == named
    assert "sekrit" not in str(caught.value)


def test_it_names_a_bad_environment_variable_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSWATCH_LOG_LEVEL", "loud")
    with pytest.raises(opswatch.ConfigError, match="OPSWATCH_LOG_LEVEL"):
        opswatch.init()


def test_it_parses_dsns_like_sentry() -> None:
    dsn = Dsn.parse("http://abc123@127.0.0.1:8321/1")
    assert (dsn.key, dsn.host, dsn.port, dsn.project, dsn.base_url) == (
        "abc123", "127.0.0.1", 8321, "1", "http://127.0.0.1:8321"
    )
    prefixed = Dsn.parse("https://k@monitor.example.com/ops/7")
    assert (prefixed.port, prefixed.prefix, prefixed.project) == (443, "/ops", "7")


def test_it_reads_common_spellings_of_booleans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_ENABLED", "yes")
    monkeypatch.setenv("SENTRY_DSN", "http://k@127.0.0.1:9/1")
    assert Settings.load().sentry_active
    monkeypatch.setenv("SENTRY_ENABLED", "off")
    assert not Settings.load().sentry_active


def test_it_turns_sentry_and_alerts_on_in_production_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_DSN", "http://k@127.0.0.1:9/1")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    development = Settings.load()
    production = Settings.load(environment="production")
    assert not development.sentry_active and not development.alerts_active
    assert production.sentry_active and production.alerts_active


def test_it_returns_the_settings_in_force_from_init() -> None:
    settings = opswatch.init(service="donations-api", console=False)
    assert settings.service == "donations-api"
    assert opswatch.settings() is settings
