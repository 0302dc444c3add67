"""The app frame: health, metrics, admin auth, and the extension points (ROUTERS, SUBSYSTEMS, hooks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest_helpers import create_monitor, donation, http, post_native
from opswatch.server import app as server_app
from opswatch.server.testing import running_server


def test_it_answers_healthz(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        answer = http().get(f"{server.url}/healthz")
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok", "queue": 0}


def test_it_exposes_its_counters_in_prometheus_text(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        post_native(server, [donation(), donation(), b"{oops", donation(level="loud")])
        create_monitor(server, "metrics-job")
        http().get(f"{server.url}/ping/{server.key}/metrics-job")
        post_native(server, [donation()], key="f" * 32)
        answer = http().get(f"{server.url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    assert 'opswatch_events_accepted_total{kind="log",source="native"} 2' in text
    assert 'opswatch_events_accepted_total{kind="check_in",source="ping"} 1' in text
    assert 'opswatch_events_rejected_total{reason="invalid_json"} 1' in text
    assert 'opswatch_events_rejected_total{reason="bad_level"} 1' in text
    assert 'opswatch_ingest_requests_total{endpoint="native",status="401"} 1' in text
    assert "opswatch_batch_commit_seconds_count 2" in text
    assert 'opswatch_batch_commit_seconds_bucket{le="+Inf"} 2' in text
    assert "opswatch_ingest_queue_events 0" in text
    assert "opswatch_store_" in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.split(" ")) == 2, line


def test_it_requires_the_admin_token_for_the_management_api(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        assert http().get(f"{server.url}/api/0/projects").status_code == 401
        wrong = http().get(f"{server.url}/api/0/projects", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        assert http().get(f"{server.url}/api/0/projects", headers=server.admin_headers).status_code == 200


def test_it_includes_listed_routers_and_installs_listed_subsystems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "extension_package"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "api.py").write_text("from server_extension import router as router\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    routers = [*server_app.ROUTERS, "extension_package.api", "no_such_api", "no_such_package.api"]
    monkeypatch.setattr(server_app, "ROUTERS", routers)
    monkeypatch.setattr(
        server_app,
        "SUBSYSTEMS",
        [*server_app.SUBSYSTEMS, "server_extension:install", "no.such.module:install"],
    )
    with running_server(tmp_path) as server:
        extension = server.ctx.extras["extension"]
        assert extension.events == ["start"]
        post_native(server, [donation(), donation()])
        assert http().get(f"{server.url}/extension/seen").json() == {"records": 2}
    assert extension.events == ["start", "stop"]


def test_it_raises_when_a_listed_module_fails_to_import_for_another_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_extension.py").write_text("import a_module_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(server_app, "SUBSYSTEMS", ["broken_extension:install"])
    with pytest.raises(ModuleNotFoundError, match="a_module_that_is_not_installed"), running_server(tmp_path):
        pass


def test_it_answers_400_not_500_for_numbers_past_the_databases_range(tmp_path: Path, state_url: str) -> None:
    client = http()
    with running_server(tmp_path, database_url=state_url) as server:
        huge = 10**30
        for method, path, body in (
            ("GET", f"/api/0/issues/{huge}", None),
            ("GET", f"/api/0/issues/{2**40}", None),  # past PostgreSQL's INTEGER, not SQLite's
            ("POST", f"/api/0/issues/{2**40}/resolve", None),
            ("GET", f"/api/0/projects/{huge}/keys", None),
            ("POST", "/api/0/monitors", {"slug": "nightly", "schedule": "0 2 * * *", "project_id": huge}),
            ("GET", f"/api/0/events?after={huge}", None),
        ):
            response = client.request(method, server.url + path, json=body, headers=server.admin_headers)
            assert 400 <= response.status_code < 500, (path, response.status_code)
            assert response.json()["detail"]



def test_it_serves_its_openapi_description_without_duplicate_operations(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        answer = http().get(f"{server.url}/api/openapi.json")
    assert answer.status_code == 200
    operations = [op["operationId"] for path in answer.json()["paths"].values() for op in path.values()]
    assert len(operations) == len(set(operations))
    assert "/api/0/monitors" in answer.json()["paths"]
