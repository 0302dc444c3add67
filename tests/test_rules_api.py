"""``/api/0/rules``, ``/api/0/alerts``, ``/api/0/silences`` and the ``rules``/``alerts``/``silence``
commands, against a real server with a rules file, on SQLite and on PostgreSQL (the clock is injected and
the background rule clock never starts, so the rounds run by hand and nothing races them)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opswatch.cli import main
from opswatch.config import ConfigError
from opswatch.server.rules import rules_for
from opswatch.server.testing import RunningServer, running_server
from rules_cast import T0, request

RULES = """
[[rules]]
name = "checkout-errors"
signal = "error_ratio"
where = "service = 'checkout'"
window = "1m"
critical = "> 0.5"
labels = { team = "payments" }
"""
NOW = T0 + 120


@pytest.fixture
def server(tmp_path: Path, state_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    fixed = datetime.datetime.fromtimestamp(NOW, datetime.UTC)
    with running_server(
        tmp_path, now=lambda: fixed, rules_file=path, rules_ingest_delay=0, database_url=state_url,
        leader_election="off", rule_clock=False,  # one server, and the test runs the rounds
    ) as running:
        running.ctx.store.append([request(T0 + 60 + i, level="error") for i in range(10)])
        rules_for(running.ctx).service.run_once(NOW)
        monkeypatch.setenv("OPSWATCH_URL", running.url)
        monkeypatch.setenv("OPSWATCH_ADMIN_TOKEN", running.admin_token)
        monkeypatch.setenv("COLUMNS", "200")  # tables one row per line, so the assertions read them
        yield running


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_it_lists_the_file_rules_and_the_defaults(server: RunningServer) -> None:
    answer = httpx.get(f"{server.url}/api/0/rules", headers=server.admin_headers).json()
    by_name = {item["name"]: item for item in answer["items"]}
    assert by_name["checkout-errors"]["source"] == "file"
    assert by_name["checkout-errors"]["instances"] == {"firing": 1}
    assert by_name["high-error-rate"]["source"] == "defaults"
    assert by_name["api-p95-latency"]["critical"] == "> 1000"
    assert httpx.get(f"{server.url}/api/0/rules").status_code == 401


def test_it_shows_a_rule_with_its_alerts_and_history(server: RunningServer) -> None:
    rule = httpx.get(f"{server.url}/api/0/rules/checkout-errors", headers=server.admin_headers).json()
    [alert] = rule["alerts"]
    assert alert["state"] == "firing" and alert["labels"] == {"rule": "checkout-errors", "team": "payments"}
    assert [row["kind"] for row in rule["history"]] == ["firing"]
    missing = httpx.get(f"{server.url}/api/0/rules/nope", headers=server.admin_headers)
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_it_lists_firing_and_pending_alerts(server: RunningServer) -> None:
    answer = httpx.get(f"{server.url}/api/0/alerts", headers=server.admin_headers).json()
    assert [(a["rule"], a["state"], a["value"]) for a in answer["items"]] == [
        ("checkout-errors", "firing", 1.0)
    ]
    assert answer["history"][0]["kind"] == "firing"
    bad = httpx.get(f"{server.url}/api/0/alerts", params={"state": "on"}, headers=server.admin_headers)
    assert bad.status_code == 400 and "state" in bad.json()["detail"]


def test_it_evaluates_a_rule_without_changing_it(server: RunningServer) -> None:
    answer = httpx.post(f"{server.url}/api/0/rules/checkout-errors/eval", headers=server.admin_headers).json()
    assert answer["instances"] == [{"labels": {}, "value": 1.0, "events": 10, "level": "critical"}]
    assert answer["window_end"] == "2026-11-29T12:02:00.000Z"


def test_it_creates_lists_and_expires_silences(server: RunningServer) -> None:
    body = {
        "matchers": [{"name": "team", "value": "pay.*", "regex": True}],
        "author": "ana",
        "duration": "1h",
    }
    created = httpx.post(f"{server.url}/api/0/silences", json=body, headers=server.admin_headers)
    assert created.status_code == 201
    silence = created.json()
    assert silence["state"] == "active" and silence["ends_at"] == NOW + 3600
    listed = httpx.get(f"{server.url}/api/0/silences", headers=server.admin_headers).json()
    assert [s["id"] for s in listed["items"]] == [silence["id"]]
    expired = httpx.post(f"{server.url}/api/0/silences/{silence['id']}/expire", headers=server.admin_headers)
    assert expired.json()["state"] == "expired"
    bad = {"matchers": [{"name": "team", "value": "(", "regex": True}], "author": "ana", "duration": "1h"}
    refused = httpx.post(f"{server.url}/api/0/silences", json=bad, headers=server.admin_headers)
    assert refused.status_code == 400 and "matchers[0].value" in refused.json()["detail"]
    unknown = httpx.post(f"{server.url}/api/0/silences/999/expire", headers=server.admin_headers)
    assert unknown.status_code == 404


def test_the_cli_lists_rules_alerts_and_evaluates(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "rules", "list")
    assert code == 0 and "checkout-errors" in out and "1 firing" in out and "high-error-rate" in out
    code, out, _ = run(capsys, "rules", "eval", "checkout-errors", "--format", "json")
    assert code == 0 and json.loads(out)["instances"][0]["level"] == "critical"
    code, out, _ = run(capsys, "alerts")
    assert code == 0 and "checkout-errors" in out and "team=payments" in out and "History" in out
    code, _, err = run(capsys, "rules", "eval", "nope")
    assert code == 2 and "no rule is called 'nope'" in err


def test_the_cli_adds_lists_and_expires_a_silence(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "silence", "add", "rule=checkout-errors", "team=~pay.*", "--author", "ana", "--format", "json"
    )
    assert code == 0
    silence = json.loads(out)
    assert silence["matchers"] == [
        {"name": "rule", "value": "checkout-errors", "regex": False},
        {"name": "team", "value": "pay.*", "regex": True},
    ]
    code, out, _ = run(capsys, "silence", "list")
    assert code == 0 and "team=~pay.*" in out and "active" in out
    code, out, _ = run(capsys, "silence", "expire", str(silence["id"]))
    assert code == 0 and f"silence {silence['id']} expired" in out
    code, _, err = run(capsys, "silence", "add", "team", "--author", "ana")
    assert code == 2 and "name=value" in err


def test_the_cli_checks_a_rules_file_without_a_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.toml"
    good.write_text(RULES)
    code, out, _ = run(capsys, "rules", "check", str(good))
    assert code == 0 and "1 rule(s), all valid" in out and "checkout-errors" in out
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.replace('critical = "> 0.5"', 'critical = "0.5"'))
    code, _, err = run(capsys, "rules", "check", str(bad))
    assert code == 2 and "rule 'checkout-errors' critical" in err and "comparison" in err


def test_the_server_refuses_to_start_with_a_bad_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULES.replace('window = "1m"', 'window = "forever"'))
    with (
        pytest.raises(ConfigError, match="rule 'checkout-errors' window"),
        running_server(tmp_path, rules_file=path),
    ):
        pass
