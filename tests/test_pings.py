"""Cron pings, ``/ping/<key>/<slug>[/start|/fail|/<exit-code>]``, and Sentry's HTTP check-in route.

Sent the way shell scripts send them (``curl -fsS .../ping/$KEY/nightly-backup/$?``); each becomes a
``check_in`` record in the store, which the cron monitors read through the ingest hooks. A ping carries no
schedule, so its monitor must exist first (``POST /api/0/monitors``); a ping for an unknown monitor is
answered 404 with the reason, as Healthchecks does, so the script's ``curl -f`` notices.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ingest_helpers import create_monitor, http, stored
from opswatch.server.testing import RunningServer, running_server
from state_databases import ENGINES, state_url


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module, its state (the monitors) on SQLite and again on PostgreSQL."""
    directory = tmp_path_factory.mktemp("pings")
    for database_url in state_url(request.param, directory):
        with running_server(
            directory, retention_days=36500, database_url=database_url, leader_election="off"
        ) as running:
            yield running


def runs(server: RunningServer, slug: str) -> list[dict[str, Any]]:
    return [r for r in stored(server, kind="check_in") if r.get("monitor_slug") == slug]


def test_it_records_a_success_ping_for_get_post_and_head(server: RunningServer) -> None:
    create_monitor(server, "nightly-backup")
    for method in ("GET", "POST", "HEAD"):
        answer = http().request(method, f"{server.url}/ping/{server.key}/nightly-backup")
        assert answer.status_code == 200
    assert http().get(f"{server.url}/ping/{server.key}/nightly-backup").text == "OK"
    found = runs(server, "nightly-backup")
    assert len(found) == 4
    assert {r["status"] for r in found} == {"ok"}
    assert all(r["kind"] == "check_in" and r["source"] == "ping" for r in found)
    assert found[0]["project_id"] == server.project_id


def test_it_ties_start_and_end_with_a_run_id(server: RunningServer) -> None:
    create_monitor(server, "invoices")
    rid = "5f3c1c1e-8f4a-4f53-9a52-1f0e0f1d2c3b"
    http().get(f"{server.url}/ping/{server.key}/invoices/start?rid={rid}")
    http().get(f"{server.url}/ping/{server.key}/invoices/fail?rid={rid}")
    start, end = runs(server, "invoices")
    assert (start["status"], end["status"]) == ("in_progress", "error")
    assert start["check_in_id"] == end["check_in_id"] == rid
    assert end["level"] == "error"


@pytest.mark.parametrize(("code", "status"), [("0", "ok"), ("1", "error"), ("255", "error")])
def test_it_reads_an_exit_code(server: RunningServer, code: str, status: str) -> None:
    slug = f"exit-{code}"
    create_monitor(server, slug)
    assert http().get(f"{server.url}/ping/{server.key}/{slug}/{code}").status_code == 200
    (run,) = runs(server, slug)
    assert run["status"] == status
    assert run["exit_code"] == int(code)
    assert f"exit code {code}" in run["message"]


def test_it_keeps_a_posted_body_as_the_runs_output_redacted(server: RunningServer) -> None:
    create_monitor(server, "backup-output")
    log = b"backup done\nuploaded to s3://bucket/2025-11-01.tar.gz\nnotified ops@example.com\n"
    http().post(f"{server.url}/ping/{server.key}/backup-output/0", content=log)
    (run,) = runs(server, "backup-output")
    assert (
        run["output"] == "backup done\nuploaded to s3://bucket/2025-11-01.tar.gz\nnotified o***@example.com\n"
    )


@pytest.fixture(scope="module")
def nightly(server: RunningServer) -> None:
    """The monitor the bad pings name, so each answer is for the fault sent, not for an unknown monitor."""
    create_monitor(server, "nightly")


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/ping/{key}/nightly/256", 400, "exit code"),
        ("/ping/{key}/nightly/log", 404, "unknown ping action"),
        ("/ping/{key}/-bad-slug", 400, "slug"),
        ("/ping/{key}/nightly?rid=has%20spaces", 400, "run id"),
        ("/ping/ffffffffffffffffffffffffffffffff/nightly", 404, "not found"),
    ],
)
@pytest.mark.usefixtures("nightly")
def test_it_refuses_bad_pings_in_plain_text(server: RunningServer, path: str, status: int, text: str) -> None:
    answer = http().get(server.url + path.format(key=server.key))
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/plain")
    assert text in answer.text


def test_it_answers_404_with_the_reason_for_an_unknown_monitor(server: RunningServer) -> None:
    for path in ("never-created", "never-created/start", "never-created/0"):
        answer = http().get(f"{server.url}/ping/{server.key}/{path}")
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/plain")
        assert "no monitor 'never-created'" in answer.text
    assert runs(server, "never-created") == []
    listed = http().get(f"{server.url}/api/0/monitors", headers=server.admin_headers).json()
    assert "never-created" not in [r["slug"] for r in listed["rejected"]]  # refused at the door


def test_it_takes_sentrys_http_check_in_route(server: RunningServer) -> None:
    create_monitor(server, "sentry-route")
    base = f"{server.url}/api/{server.project_id}/cron/sentry-route/{server.key}/"
    started = http().get(base, params={"status": "in_progress", "check_in_id": "c1", "environment": "prod"})
    assert started.status_code == 202
    assert started.json() == {"id": "c1"}
    done = http().post(base, params={"status": "ok", "check_in_id": "c1", "duration": "3.5"})
    assert done.status_code == 202
    start, end = runs(server, "sentry-route")
    assert (start["status"], end["status"]) == ("in_progress", "ok")
    assert start["environment"] == "prod"
    assert end["duration_ms"] == 3500.0
    assert end["source"] == "sentry"


def test_it_answers_404_with_the_reason_for_an_unknown_monitor_on_sentrys_route(
    server: RunningServer,
) -> None:
    base = f"{server.url}/api/{server.project_id}/cron/sentry-never-created/{server.key}/"
    for method in ("GET", "POST"):
        answer = http().request(method, base, params={"status": "ok"})
        assert answer.status_code == 404
        assert "no monitor 'sentry-never-created'" in answer.json()["detail"]
    assert runs(server, "sentry-never-created") == []


def test_it_refuses_a_bad_sentry_check_in(server: RunningServer) -> None:
    create_monitor(server, "sentry-bad")
    base = f"{server.url}/api/{server.project_id}/cron/sentry-bad/"
    assert http().get(base + server.key + "/", params={"status": "finished"}).status_code == 400
    assert http().get(base + server.key + "/", params={"status": "ok", "duration": "soon"}).status_code == 400
    for duration in ("1e400", "-1", "nan"):
        answer = http().get(base + server.key + "/", params={"status": "ok", "duration": duration})
        assert answer.status_code == 400, duration
    assert http().get(base + "0" * 32 + "/", params={"status": "ok"}).status_code == 401
    other_project = f"{server.url}/api/7/cron/sentry-bad/{server.key}/"
    assert http().get(other_project, params={"status": "ok"}).status_code == 401
