"""Input is validated whole: patterns match the entire text (no trailing newline slips past ``$``), and
numbers in paths are ASCII digits only (``int()`` alone takes ``１``, ``+1``, `` 1`` and ``1_0``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ingest_helpers import donation, http, ndjson
from opswatch.crons.schedule import ScheduleError, parse_schedule
from opswatch.server.monitors.config import MonitorConfigError, check_slug, normalize
from opswatch.server.testing import RunningServer, running_server

NOT_ASCII_NUMBERS = ["１", "+1", "1_0", "%201", "1%0A", "٣"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("validation")) as running:
        yield running


@pytest.mark.parametrize("slug", ["nl-slug\n", "nightly\r\n", "a b", "ä", ""])
def test_it_refuses_a_slug_with_anything_after_or_outside_its_pattern(slug: str) -> None:
    with pytest.raises(MonitorConfigError, match="slug"):
        check_slug(slug)


def test_the_monitor_api_refuses_a_slug_ending_in_a_newline(server: RunningServer) -> None:
    answer = http().post(
        f"{server.url}/api/0/monitors",
        json={"slug": "nl-slug\n", "project": server.project_id, "config": {"schedule": "@daily"}},
        headers=server.admin_headers,
    )
    assert answer.status_code == 400, answer.text
    assert "slug" in answer.text


@pytest.mark.parametrize("text", ["90s\nx", "٥m", "５m"])
def test_it_refuses_a_duration_with_text_after_it_or_non_ascii_digits(text: str) -> None:
    with pytest.raises(MonitorConfigError, match="checkin_margin"):
        normalize({"schedule": "@daily", "checkin_margin": text})


@pytest.mark.parametrize("text", ["every ٥ minutes", "every ５ minutes"])
def test_it_refuses_an_interval_with_non_ascii_digits(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(text)


@pytest.mark.parametrize("number", NOT_ASCII_NUMBERS)
def test_an_issue_path_takes_ascii_digits_only(server: RunningServer, number: str) -> None:
    answer = http().get(f"{server.url}/api/0/issues/{number}", headers=server.admin_headers)
    assert answer.status_code == 404, (number, answer.text)


@pytest.mark.parametrize("number", NOT_ASCII_NUMBERS)
def test_a_project_path_takes_ascii_digits_only(server: RunningServer, number: str) -> None:
    keys = http().get(f"{server.url}/api/0/projects/{number}/keys", headers=server.admin_headers)
    assert keys.status_code == 404, (number, keys.text)
    ingest = http().post(
        f"{server.url}/api/{number}/events/",
        content=ndjson([donation()]),
        headers={"Authorization": f"Bearer {server.key}"},
    )
    assert ingest.status_code == 404, (number, ingest.text)


def test_ascii_digits_still_work(server: RunningServer) -> None:
    keys = http().get(f"{server.url}/api/0/projects/{server.project_id}/keys", headers=server.admin_headers)
    assert keys.status_code == 200
    assert http().get(f"{server.url}/api/0/issues/999", headers=server.admin_headers).status_code == 404
