"""Rules managed through ``/api/0/rules`` (create, replace, delete) and ``opswatch rules add|delete``
(on SQLite, and on PostgreSQL when TEST_POSTGRES_URL is set):
validated exactly as file rules, stored in the state store, the file's rules read-only."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opswatch.cli import main
from opswatch.server.rules import rules_for
from opswatch.server.rules.catalog import catalog_for
from opswatch.server.testing import RunningServer, running_server
from rules_cast import T0, request

FILE_RULES = """
[[rules]]
name = "checkout-errors"
signal = "error_ratio"
window = "1m"
critical = "> 0.5"
"""
SEARCH_ERRORS = {
    "name": "search-errors",
    "signal": "count",
    "where": "service = 'search' AND level = 'error'",
    "window": "1m",
    "critical": "> 3",
    "labels": {"team": "search"},
}
NOW = T0 + 120


@pytest.fixture
def server(tmp_path: Path, state_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    path = tmp_path / "rules.toml"
    path.write_text(FILE_RULES)
    fixed = datetime.datetime.fromtimestamp(NOW, datetime.UTC)
    with running_server(
        tmp_path, now=lambda: fixed, rules_file=path, rules_ingest_delay=0, database_url=state_url,
        leader_election="off", rule_clock=False,  # one server, whose rounds the test runs
    ) as running:
        monkeypatch.setenv("OPSWATCH_URL", running.url)
        monkeypatch.setenv("OPSWATCH_ADMIN_TOKEN", running.admin_token)
        monkeypatch.setenv("COLUMNS", "200")
        yield running


def second_server(tmp_path: Path, state_url: str) -> contextlib.AbstractContextManager[RunningServer]:
    """Another server (or the same after a restart) on the same state store, with its own event store."""
    return running_server(tmp_path / "second", rules_file=tmp_path / "rules.toml", database_url=state_url)


def api(server: RunningServer, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, f"{server.url}/api/0/rules{path}", headers=server.admin_headers, **kwargs)  # type: ignore[arg-type]


def names(server: RunningServer) -> dict[str, str]:
    return {item["name"]: item["source"] for item in api(server, "GET", "").json()["items"]}


def test_it_creates_a_rule_that_is_evaluated_like_a_file_rule(server: RunningServer) -> None:
    created = api(server, "POST", "", json=SEARCH_ERRORS)
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "api" and created.json()["definition"] == SEARCH_ERRORS
    assert names(server)["search-errors"] == "api"
    server.ctx.store.append([request(T0 + 60 + i, service="search", level="error") for i in range(5)])
    rules_for(server.ctx).service.run_once(NOW)
    rule = api(server, "GET", "/search-errors").json()
    [alert] = rule["alerts"]
    assert (alert["state"], alert["value"], alert["labels"]["team"]) == ("firing", 5.0, "search")
    again = api(server, "POST", "", json=SEARCH_ERRORS)
    assert again.status_code == 409 and "PUT" in again.json()["detail"]


def test_it_refuses_a_bad_rule_naming_the_key_as_the_file_check_does(server: RunningServer) -> None:
    bad = api(server, "POST", "", json={**SEARCH_ERRORS, "critical": "above 3"})
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("rule 'search-errors' critical: expected a comparison")
    unknown = api(server, "PUT", "/search-errors", json={**SEARCH_ERRORS, "treshold": 3})
    assert unknown.status_code == 400 and "'search-errors' treshold: unknown key" in unknown.json()["detail"]
    sql = api(server, "POST", "", json={**SEARCH_ERRORS, "where": "1; DROP TABLE events"})
    assert sql.status_code == 400 and "where" in sql.json()["detail"]
    assert api(server, "POST", "", json=["not", "a", "rule"]).status_code == 400
    assert "search-errors" not in names(server)  # nothing stored


def test_it_replaces_and_deletes_a_rule_and_survives_a_restart(
    tmp_path: Path, state_url: str, server: RunningServer
) -> None:
    assert api(server, "PUT", "/search-errors", json=SEARCH_ERRORS).status_code == 200
    changed = api(server, "PUT", "/search-errors", json={**SEARCH_ERRORS, "critical": "> 10"})
    assert changed.json()["critical"] == "> 10"
    renamed = api(server, "PUT", "/search-errors", json={**SEARCH_ERRORS, "name": "other"})
    assert renamed.status_code == 400 and "name" in renamed.json()["detail"]
    with second_server(tmp_path, state_url) as second:
        answer = httpx.get(f"{second.url}/api/0/rules/search-errors", headers=second.admin_headers).json()
        assert answer["critical"] == "> 10" and answer["source"] == "api"
    deleted = api(server, "DELETE", "/search-errors")
    assert deleted.json() == {"deleted": "search-errors", "restored": None}
    assert "search-errors" not in names(server)
    assert api(server, "DELETE", "/search-errors").status_code == 404


def test_it_resolves_the_firing_alerts_of_a_deleted_rule(server: RunningServer) -> None:
    api(server, "POST", "", json=SEARCH_ERRORS)
    server.ctx.store.append([request(T0 + 60 + i, service="search", level="error") for i in range(5)])
    rules = rules_for(server.ctx)
    rules.service.run_once(NOW)
    assert api(server, "GET", "/search-errors").json()["alerts"][0]["state"] == "firing"
    api(server, "DELETE", "/search-errors")
    alerts = httpx.get(f"{server.url}/api/0/alerts", headers=server.admin_headers).json()
    assert "search-errors" not in [a["rule"] for a in alerts["items"]]
    kinds = [(row["rule"], row["kind"], row["reason"]) for row in alerts["history"]]
    assert ("search-errors", "resolved", "the rule was removed") in kinds


def test_it_keeps_file_rules_read_only_and_lets_an_api_rule_replace_a_default(server: RunningServer) -> None:
    refused = api(server, "PUT", "/checkout-errors", json={**SEARCH_ERRORS, "name": "checkout-errors"})
    assert refused.status_code == 409 and "rules file" in refused.json()["detail"]
    assert api(server, "DELETE", "/checkout-errors").status_code == 409
    default = api(server, "DELETE", "/high-error-rate")
    assert default.status_code == 409 and "OPSWATCH_RULES_DEFAULTS" in default.json()["detail"]
    replaced = api(server, "PUT", "/high-error-rate", json={**SEARCH_ERRORS, "name": "high-error-rate"})
    assert replaced.status_code == 200 and names(server)["high-error-rate"] == "api"
    assert api(server, "DELETE", "/high-error-rate").json()["restored"] == "defaults"
    assert names(server)["high-error-rate"] == "defaults"


def test_a_second_server_picks_up_a_rule_another_one_created(
    tmp_path: Path, state_url: str, server: RunningServer
) -> None:
    with second_server(tmp_path, state_url) as second:
        api(server, "POST", "", json=SEARCH_ERRORS)
        assert "search-errors" not in rules_for(second.ctx).service.rules
        clock = rules_for(second.ctx).clock
        clock.run_once((clock.next_round or 0) + 1)  # its next round: the catalog is re-read first
        assert rules_for(second.ctx).service.rules["search-errors"].source == "api"


def test_the_cli_adds_rules_from_a_file_and_deletes_one(
    tmp_path: Path, server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "more.toml"
    path.write_text(
        '[[rules]]\nname = "a"\nsignal = "count"\nwindow = "5m"\ncritical = "> 1"\n'
        '[[rules]]\nname = "b"\nsignal = "rate"\nwindow = "5m"\ncritical = "> 9"\n'
    )
    assert main(["rules", "add", str(path)]) == 0
    assert "added or replaced 2 rule(s): a, b" in capsys.readouterr().out
    assert {"a", "b"} <= set(names(server))
    assert main(["rules", "list"]) == 0
    listed = {
        line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines() if line.strip()
    }
    assert (listed["a"], listed["checkout-errors"], listed["high-error-rate"]) == ("api", "file", "defaults")
    path.write_text('[[rules]]\nname = "c"\nsignal = "count"\nwindow = "5m"\ncritical = "more"\n')
    assert main(["rules", "add", str(path)]) == 2
    assert "rule 'c' critical" in capsys.readouterr().err
    assert main(["rules", "delete", "a"]) == 0
    assert "a" not in names(server)
    assert main(["rules", "delete", "checkout-errors"]) == 2
    assert "read-only" in capsys.readouterr().err


def test_a_file_rule_overrides_an_api_rule_of_the_same_name_which_is_listed_as_shadowed(
    tmp_path: Path, state_url: str, server: RunningServer
) -> None:
    with running_server(tmp_path / "no-file", database_url=state_url) as fileless:
        stored = {**SEARCH_ERRORS, "name": "checkout-errors"}
        answer = httpx.put(
            f"{fileless.url}/api/0/rules/checkout-errors", json=stored, headers=fileless.admin_headers
        )
        assert answer.status_code == 200 and answer.json()["source"] == "api"
    catalog_for(server.ctx).refresh()  # what the server does before each round
    listing = api(server, "GET", "").json()
    assert listing["shadowed"] == ["checkout-errors"]
    assert names(server)["checkout-errors"] == "file"
    assert api(server, "GET", "/checkout-errors").json()["signal"] == "error_ratio"  # the file's
