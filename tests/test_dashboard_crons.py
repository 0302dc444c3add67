"""The cron page over HTTP: settings in words and units, and the pause, resume and edit forms.

The cast: the nightly job (created through the monitors API, one good run pinged by its shell script)
and a viewer logged in with the form, whose changes are POSTs with the page's CSRF token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dashboard_http import cookieless_client, csrf_of, login, signed_in
from opswatch.server.monitors.errors import MonitorConfigError
from opswatch.server.testing import RunningServer, running_server
from opswatch.server.ui import cron_settings
from state_databases import ENGINES, state_url

pytestmark = pytest.mark.slow

SLUG = "nightly-job"


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module, its state (the monitor) on SQLite and again on PostgreSQL."""
    directory = tmp_path_factory.mktemp("crons")
    for database_url in state_url(request.param, directory):
        with running_server(directory, database_url=database_url, leader_election="off") as running:
            with httpx.Client(timeout=30, trust_env=False) as client:
                created = client.post(
                    f"{running.url}/api/0/monitors",
                    json={"slug": SLUG, "config": {"schedule": "0 2 * * *", "checkin_margin_seconds": 15}},
                    headers=running.admin_headers,
                )
                assert created.status_code == 201, created.text
                assert client.get(f"{running.url}/ping/{running.key}/{SLUG}").status_code == 200
            yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with cookieless_client() as client:
        yield client


@pytest.fixture
def jar(server: RunningServer, http: httpx.Client) -> dict[str, str]:
    """Headers of a viewer logged in with the form."""
    return signed_in(login(server, http))


def cron_page(server: RunningServer, http: httpx.Client, jar: dict[str, str]) -> str:
    answer = http.get(f"{server.url}/crons/{SLUG}", headers=jar)
    assert answer.status_code == 200, answer.text
    return answer.text


def post(server: RunningServer, http: httpx.Client, jar: dict[str, str], action: str, **fields: str) -> httpx.Response:
    csrf = csrf_of(cron_page(server, http, jar))
    return http.post(f"{server.url}/crons/{SLUG}/{action}", data={"csrf": csrf, **fields}, headers=jar)


def monitor(server: RunningServer, http: httpx.Client) -> dict[str, Any]:
    answer = http.get(f"{server.url}/api/0/monitors/{SLUG}", headers=server.admin_headers)
    assert answer.status_code == 200
    return dict(answer.json())


def test_it_shows_the_settings_with_labels_and_units(server: RunningServer, http: httpx.Client, jar: dict[str, str]) -> None:
    html = cron_page(server, http, jar)
    assert "<th>Check-in margin</th><td>15 s</td>" in html
    assert "<th>Max runtime</th><td>30 min</td>" in html
    assert "<th>Failure threshold</th><td>1 run</td>" in html
    assert "checkin_margin_seconds" not in html.split("<form")[0] and "15.0" not in html
    assert "last 1 run<" in html and "last 1 runs" not in html


def test_it_pauses_and_resumes_a_monitor_from_its_page(server: RunningServer, http: httpx.Client, jar: dict[str, str]) -> None:
    paused = post(server, http, jar, "pause")
    assert paused.status_code == 303 and paused.headers["location"] == f"/crons/{SLUG}"
    assert monitor(server, http)["paused"] is True
    html = cron_page(server, http, jar)
    assert f'action="/crons/{SLUG}/resume"' in html and "status-paused" in html
    resumed = post(server, http, jar, "resume")
    assert resumed.status_code == 303
    assert monitor(server, http)["paused"] is False
    assert f'action="/crons/{SLUG}/pause"' in cron_page(server, http, jar)


def test_it_edits_the_schedule_margin_runtime_and_thresholds(server: RunningServer, http: httpx.Client, jar: dict[str, str]) -> None:
    answer = post(server, http, jar, "edit", schedule="30 3 * * *", timezone="UTC", checkin_margin="5m",
                  max_runtime="2h", failure_threshold="3", recovery_threshold="2")
    assert answer.status_code == 303, answer.text
    settings = monitor(server, http)["settings"]
    assert settings["schedule"] == "30 3 * * *"
    assert settings["checkin_margin_seconds"] == 300 and settings["max_runtime_seconds"] == 7200
    assert (settings["failure_threshold"], settings["recovery_threshold"]) == (3, 2)
    html = cron_page(server, http, jar)
    assert "<th>Check-in margin</th><td>5 min</td>" in html and "<th>Failure threshold</th><td>3 runs</td>" in html
    assert 'name="checkin_margin" value="5m"' in html


def test_it_refuses_a_bad_setting_naming_the_field_and_keeps_what_was_typed(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    before = monitor(server, http)["settings"]
    answer = post(server, http, jar, "edit", checkin_margin="soon")
    assert answer.status_code == 400
    assert "Check-in margin: expected" in answer.text
    assert 'name="checkin_margin" value="soon"' in answer.text
    thresholds = post(server, http, jar, "edit", failure_threshold="three")
    assert thresholds.status_code == 400 and "Failure threshold: expected a whole number" in thresholds.text
    assert monitor(server, http)["settings"] == before


def test_it_refuses_monitor_changes_without_the_csrf_token_or_from_another_site(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    bare = http.post(f"{server.url}/crons/{SLUG}/pause", data={}, headers=jar)
    assert bare.status_code == 403
    csrf = csrf_of(cron_page(server, http, jar))
    foreign = http.post(f"{server.url}/crons/{SLUG}/pause", data={"csrf": csrf},
                        headers={**jar, "Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert monitor(server, http)["paused"] is False


def test_it_answers_404_for_an_unknown_monitor_or_action(server: RunningServer, http: httpx.Client, jar: dict[str, str]) -> None:
    assert post(server, http, jar, "explode").status_code == 404
    csrf = csrf_of(cron_page(server, http, jar))
    missing = http.post(f"{server.url}/crons/no-such-job/pause", data={"csrf": csrf}, headers=jar)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(15.0, "15 s"), (90.0, "1 min 30 s"), (1800.0, "30 min"), (7200.0, "2 h"), (93600.0, "1 d 2 h"), (0.5, "0.5 s")],
)
def test_it_writes_durations_exactly_in_units(seconds: float, text: str) -> None:
    assert cron_settings.duration(seconds) == text


def test_it_sends_only_the_changed_settings_and_reads_bare_numbers_as_seconds() -> None:
    settings = {"schedule": "@daily", "timezone": "UTC", "checkin_margin_seconds": 60.0,
                "max_runtime_seconds": 1800.0, "failure_threshold": 1, "recovery_threshold": 1}
    form = cron_settings.form_values(settings)
    assert form["checkin_margin"] == "1m" and form["max_runtime"] == "30m"
    assert cron_settings.changes(form, settings) == {}
    assert cron_settings.changes({**form, "checkin_margin": "90"}, settings) == {"checkin_margin_seconds": "90s"}
    with pytest.raises(MonitorConfigError) as err:
        cron_settings.changes({**form, "recovery_threshold": "-1"}, settings)
    assert cron_settings.problem(err.value).startswith("Recovery threshold: ")


def test_it_keeps_the_dashboard_settings_form_in_step_with_the_server() -> None:
    from opswatch.server.monitors import config as monitor_config

    edited = {key for _, key, _, _ in cron_settings.FIELDS}
    assert edited <= set(monitor_config.KEYS)
