"""Projects and ingest keys: the default project, schema versions, the API and ``opswatch projects``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from ingest_helpers import donation, http, post_native
from opswatch.cli import main
from opswatch.server.state import projects
from opswatch.server.state.base import create_engine_for
from opswatch.server.state.schema import SchemaTooNew, current_version, ensure_schema
from opswatch.server.testing import RunningServer, running_server


def test_it_creates_the_default_project_once_and_keeps_its_dsn(tmp_path: Path, state_url: str) -> None:
    with running_server(tmp_path, database_url=state_url) as first:
        dsn = first.dsn
        assert first.project_id == 1
        assert first.ctx.default_project.name == "default"
        assert len(first.key) == 32
    with running_server(tmp_path, database_url=state_url) as again:
        # a new port, the same key and project
        assert again.key == first.key
        assert again.dsn.split("@")[0] == dsn.split("@")[0]
        assert current_version(again.ctx.engine, "projects") == projects.SCHEMA_VERSION


def test_it_upgrades_an_older_schema_step_by_step_and_refuses_a_newer_one(state_url: str) -> None:
    engine = create_engine_for(state_url)
    steps: list[int] = []

    def step(number: int):  # type: ignore[no-untyped-def]
        def upgrade(conn: Connection) -> None:
            conn.execute(text(f"CREATE TABLE IF NOT EXISTS upgraded_{number} (x INTEGER)"))
            steps.append(number)

        return upgrade

    assert ensure_schema(engine, "widgets", 1) == 0
    assert ensure_schema(engine, "widgets", 3, {2: step(2), 3: step(3)}) == 1
    assert steps == [2, 3]
    assert current_version(engine, "widgets") == 3
    assert ensure_schema(engine, "widgets", 3) == 3
    with pytest.raises(SchemaTooNew):
        ensure_schema(engine, "widgets", 2)
    with pytest.raises(RuntimeError, match="version 5"):
        ensure_schema(engine, "widgets", 5, {4: step(4)})
    engine.dispose()


def test_it_creates_projects_whose_keys_ingest_only_into_them(tmp_path: Path, state_url: str) -> None:
    with running_server(tmp_path, database_url=state_url) as server:
        created = http().post(
            f"{server.url}/api/0/projects", json={"name": "checkout-api"}, headers=server.admin_headers
        )
        assert created.status_code == 201
        project = created.json()
        key = project["keys"][0]["key"]
        assert (
            project["keys"][0]["dsn"]
            == f"http://{key}@127.0.0.1:{server.url.rsplit(':', 1)[1]}/{project['id']}"
        )
        assert post_native(server, [donation()], key=key, project=project["id"]).status_code == 200
        assert post_native(server, [donation()], key=key, project=server.project_id).status_code == 401
        taken = http().post(
            f"{server.url}/api/0/projects", json={"name": "checkout-api"}, headers=server.admin_headers
        )
        assert taken.status_code == 409
        assert (
            http()
            .post(f"{server.url}/api/0/projects", json={"name": " "}, headers=server.admin_headers)
            .status_code
            == 400
        )


def test_it_adds_revokes_and_enables_keys(tmp_path: Path, state_url: str) -> None:
    with running_server(tmp_path, database_url=state_url) as server:
        added = http().post(
            f"{server.url}/api/0/projects/1/keys", json={"label": "ci"}, headers=server.admin_headers
        )
        assert added.status_code == 201
        key = added.json()["key"]
        assert post_native(server, [donation()], key=key).status_code == 200
        revoked = http().post(f"{server.url}/api/0/keys/{key}/revoke", headers=server.admin_headers)
        assert revoked.json() == {"key": key, "active": False}
        assert post_native(server, [donation()], key=key).status_code == 401
        http().post(f"{server.url}/api/0/keys/{key}/enable", headers=server.admin_headers)
        assert post_native(server, [donation()], key=key).status_code == 200
        listed = http().get(f"{server.url}/api/0/projects/1/keys", headers=server.admin_headers).json()
        assert [k["label"] for k in listed["keys"]] == ["default", "ci"]
        assert (
            http().post(f"{server.url}/api/0/projects/99/keys", headers=server.admin_headers).status_code
            == 404
        )
        assert (
            http().post(f"{server.url}/api/0/keys/nope/revoke", headers=server.admin_headers).status_code
            == 404
        )


@pytest.fixture
def cli_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunningServer:
    with running_server(tmp_path) as server:
        monkeypatch.setenv("OPSWATCH_URL", server.url)
        monkeypatch.setenv("OPSWATCH_ADMIN_TOKEN", server.admin_token)
        yield server  # type: ignore[misc]


def test_it_lists_and_creates_projects_from_the_command_line(
    cli_server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["projects", "create", "billing"]) == 0
    out = capsys.readouterr().out
    assert "project 2 (billing) created" in out
    assert "OPSWATCH_DSN=http://" in out and out.strip().endswith("/2")
    assert main(["projects", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed["projects"]] == ["default", "billing"]
    assert main(["projects", "list"]) == 0
    table = capsys.readouterr().out
    assert "billing" in table and cli_server.key in table
    assert main(["projects", "add-key", "2", "--label", "ci", "--format", "json"]) == 0
    key = json.loads(capsys.readouterr().out)["key"]
    assert main(["projects", "keys", "2"]) == 0
    assert key in capsys.readouterr().out
    assert main(["projects", "revoke", key]) == 0
    assert f"key {key} revoked" in capsys.readouterr().out


def test_it_explains_a_missing_or_wrong_token_and_an_unreachable_server(
    cli_server: RunningServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPSWATCH_ADMIN_TOKEN")
    assert main(["projects"]) == 2
    assert "OPSWATCH_ADMIN_TOKEN" in capsys.readouterr().err
    assert main(["projects", "--token", "wrong"]) == 2
    assert "refused" in capsys.readouterr().err
    assert (
        main(["projects", "create", "x", "--token", cli_server.admin_token, "--url", "http://127.0.0.1:9"])
        == 2
    )
    assert "cannot reach" in capsys.readouterr().err
