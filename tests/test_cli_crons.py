"""``opswatch crons`` against a real server: create, list, show, edit, pause, resume, delete (on a SQLite
state store and on PostgreSQL, ``state_url``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opswatch.cli import main
from opswatch.server.testing import RunningServer, running_server


@pytest.fixture
def server(tmp_path: Path, state_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    with running_server(tmp_path, database_url=state_url, leader_election="off") as running:
        monkeypatch.setenv("OPSWATCH_URL", running.url)
        monkeypatch.setenv("OPSWATCH_ADMIN_TOKEN", running.admin_token)
        yield running


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_it_creates_lists_and_shows_a_monitor(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "crons", "create", "nightly-report", "--schedule", "0 2 * * *", "--checkin-margin", "5",
        "--max-runtime", "90s", "--timezone", "Europe/Berlin", "--format", "json",
    )  # fmt: skip
    assert code == 0
    created = json.loads(out)
    assert created["settings"]["checkin_margin_seconds"] == 300  # a bare number is minutes
    assert created["settings"]["max_runtime_seconds"] == 90
    assert created["settings"]["timezone"] == "Europe/Berlin"

    httpx.get(f"{server.url}/ping/{server.key}/nightly-report")
    code, out, _ = run(capsys, "crons", "list", "--format", "json")
    assert code == 0
    [item] = json.loads(out)["items"]
    assert item["slug"] == "nightly-report" and item["status"] == "ok"

    code, out, _ = run(capsys, "crons", "list")
    assert code == 0 and "nightly-report" in out and "1 monitor(s)" in out

    code, out, _ = run(capsys, "crons", "show", "nightly-report")
    assert code == 0 and "nightly-report" in out and "recent runs" in out and "5m" in out


def test_it_edits_pauses_resumes_and_deletes(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "crons", "create", "sync", "--schedule", "@hourly")
    code, out, _ = run(capsys, "crons", "edit", "sync", "--failure-threshold", "3", "--format", "json")
    assert code == 0 and json.loads(out)["settings"]["failure_threshold"] == 3
    code, out, _ = run(capsys, "crons", "pause", "sync")
    assert code == 0 and "paused monitor sync" in out
    code, out, _ = run(capsys, "crons", "resume", "sync")
    assert code == 0 and "resumed monitor sync" in out
    code, out, _ = run(capsys, "crons", "delete", "sync")
    assert code == 0 and "deleted monitor sync" in out
    code, _, err = run(capsys, "crons", "show", "sync")
    assert code == 2 and "no monitor 'sync'" in err


def test_it_fails_with_a_one_line_reason_on_bad_input(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "crons", "create", "bad", "--schedule", "0 2 * * * *")
    assert code == 2 and err.startswith("opswatch: schedule:") and "6 fields" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "crons", "edit", "bad")
    assert code == 2 and "at least one setting" in err


def test_it_says_when_the_admin_token_is_wrong(
    server: RunningServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSWATCH_ADMIN_TOKEN", "wrong")
    code, _, err = run(capsys, "crons", "list")
    assert code == 2 and "admin token" in err
