"""The deployment recipe ``deploy/compose.yaml`` (three replicas, PostgreSQL, ClickHouse, nginx), checked
without Docker, which this machine and CI lack: it parses, every ``OPSWATCH_*`` variable it sets is a
setting the server knows, documents and accepts with the recipe's values, every variable it asks the
operator for is in ``deploy/example.env`` and the README, and nginx balances over exactly the replicas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from opswatch.server import limits
from opswatch.server.config import _FROM_ENV, ServerSettings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
README = (ROOT / "README.md").read_text()
#: ``${NAME}``, ``${NAME:-default}``, ``${NAME:?message}`` (Compose's interpolation).
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SAMPLE = {
    "POSTGRES_PASSWORD": "pg-secret",
    "CLICKHOUSE_PASSWORD": "ch-secret",
    "OPSWATCH_ADMIN_TOKEN": "ow" + "t" * 40,
    "OPSWATCH_PUBLIC_URL": "https://opswatch.example.com",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def replicas(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == "opswatch:local"}


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's substitution of what the operator gives (``.env``)."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if name in given and given[name] != "":
            return given[name]
        if kind == ":?":
            raise AssertionError(f"{name} is required: {rest}")
        return rest or ""

    return INTERPOLATION.sub(one, value)


def test_it_runs_three_replicas_of_one_configuration_behind_a_load_balancer(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "clickhouse", "lb"} <= set(services)
    found = replicas(compose)
    assert sorted(found) == ["opswatch1", "opswatch2", "opswatch3"]
    environments = [service["environment"] for service in found.values()]
    assert all(environment == environments[0] for environment in environments)
    assert all(
        service["depends_on"]["postgres"]["condition"] == "service_healthy" for service in found.values()
    )
    assert services["lb"]["ports"] == ["8321:8321"]


def test_every_opswatch_variable_it_sets_is_a_documented_setting(compose: dict[str, Any]) -> None:
    environment = next(iter(replicas(compose).values()))["environment"]
    known = set(_FROM_ENV.values())
    for variable in environment:
        assert variable in known, f"{variable} is not a server setting"
        assert f"`{variable}`" in README, f"{variable} is not in the README"
    assert environment["OPSWATCH_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert environment["OPSWATCH_EVENTS_URL"].startswith("clickhouse://")


def test_the_server_accepts_the_recipes_settings(compose: dict[str, Any], tmp_path: Path) -> None:
    environment = next(iter(replicas(compose).values()))["environment"]
    environ = {name: interpolate(str(value), SAMPLE) for name, value in environment.items()}
    environ["OPSWATCH_DATA_DIR"] = str(tmp_path)  # the image's /data
    settings = ServerSettings.load(environ)
    assert settings.database_url == "postgresql+psycopg://opswatch:pg-secret@postgres:5432/opswatch"
    assert settings.events_url == "clickhouse://opswatch:ch-secret@clickhouse:8123/opswatch"
    assert settings.leader_election == "on" and settings.leader_lease == 15.0 and settings.leader_renew == 2.0
    assert settings.admin_token == SAMPLE["OPSWATCH_ADMIN_TOKEN"]
    assert settings.slack_webhook_url is None  # optional, left empty
    assert settings.retention_days == 30


def test_it_refuses_to_start_without_the_secrets(compose: dict[str, Any]) -> None:
    environment = next(iter(replicas(compose).values()))["environment"]
    with pytest.raises(AssertionError, match="OPSWATCH_ADMIN_TOKEN is required"):
        interpolate(environment["OPSWATCH_ADMIN_TOKEN"], {})
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD is required"):
        interpolate(environment["OPSWATCH_DATABASE_URL"], {})


def test_every_variable_the_operator_gives_is_in_the_example_and_the_readme(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    asked = {match.group(1) for match in INTERPOLATION.finditer(text)}
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "example.env").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert asked == example
    for name in asked:
        assert name in README, f"{name} is not in the README"


def test_nginx_balances_over_exactly_the_replicas_and_passes_the_servers_body_limit(
    compose: dict[str, Any],
) -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in compose["services"]["lb"]["volumes"]
    upstreams = re.findall(r"^\s*server\s+([a-z0-9]+):(\d+)", conf, re.MULTILINE)
    assert sorted(upstreams) == [(name, "8321") for name in sorted(replicas(compose))]
    assert re.search(r"^\s*listen\s+8321;", conf, re.MULTILINE)
    size = re.search(r"client_max_body_size\s+(\d+)m;", conf)
    assert size is not None and int(size.group(1)) * limits.MiB > limits.MAX_BODY_BYTES
    assert conf.count("{") == conf.count("}")


def test_the_image_installs_the_drivers_the_recipe_needs() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    extras = re.search(r"'\.\[([a-z,]+)\]'", dockerfile)
    assert extras is not None and {"server", "clickhouse", "postgres"} <= set(extras.group(1).split(","))
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^postgres = \["psycopg', pyproject, re.MULTILINE)
