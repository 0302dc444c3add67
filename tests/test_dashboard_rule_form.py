"""The Alerts page's rule form over HTTP: a rule written as TOML is checked like a file rule, saved
through the rule catalog, edited and deleted on its page; file rules are read-only; CSRF is required."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dashboard_http import cookieless_client, csrf_of, login, signed_in
from opswatch.server.testing import RunningServer, running_server

FILE_RULES = '[[rules]]\nname = "from-file"\nsignal = "count"\nwindow = "5m"\ncritical = "> 100"\n'
GOOD = (
    'name = "many-errors"\nsignal = "count"\nwhere = "level = \'error\'"\nwindow = "5m"\ncritical = "> 10"\n'
)


@pytest.fixture
def server(tmp_path: Path, state_url: str) -> Iterator[RunningServer]:
    """A server on a SQLite state store and on PostgreSQL (the rule catalog lives there)."""
    (tmp_path / "rules.toml").write_text(FILE_RULES)
    with running_server(
        tmp_path, rules_file=tmp_path / "rules.toml", database_url=state_url, leader_election="off"
    ) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with cookieless_client() as client:
        yield client


@pytest.fixture
def jar(server: RunningServer, http: httpx.Client) -> dict[str, str]:
    return signed_in(login(server, http))


def page(server: RunningServer, http: httpx.Client, jar: dict[str, str], path: str) -> str:
    answer = http.get(f"{server.url}{path}", headers=jar)
    assert answer.status_code == 200, answer.text[:300]
    return answer.text


def post(
    server: RunningServer, http: httpx.Client, jar: dict[str, str], path: str, **fields: str
) -> httpx.Response:
    csrf = csrf_of(page(server, http, jar, "/alerts"))
    return http.post(f"{server.url}{path}", data={"csrf": csrf, **fields}, headers=jar)


def shown_error(text: str) -> str:
    found = re.search(r'<p class="alert" role="alert">([^<]*)</p>', text)
    assert found is not None, "no error shown"
    return html.unescape(found.group(1))


def textarea(text: str) -> str:
    """The text of the page's rule form."""
    found = re.search(r'<textarea name="toml"[^>]*>([^<]*)</textarea>', text)
    assert found is not None, "no rule form"
    return html.unescape(found.group(1))


def stored(server: RunningServer, name: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/0/rules/{name}", headers=server.admin_headers, trust_env=False)


def test_it_adds_a_rule_from_toml_and_shows_its_page(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    saved = post(server, http, jar, "/alerts/rules", mode="create", toml=GOOD)
    assert saved.status_code == 303 and saved.headers["location"] == "/alerts/many-errors"
    assert stored(server, "many-errors").json()["source"] == "api"
    listing = page(server, http, jar, "/alerts")
    assert 'href="/alerts/many-errors">many-errors</a> <span class="muted small">added here' in listing
    own = page(server, http, jar, "/alerts/many-errors")
    assert "Delete rule" in own
    assert 'critical = "> 10"' in textarea(own)  # the edit form, prefilled with the stored keys


def test_it_shows_a_bad_rule_with_the_key_at_fault_and_keeps_the_text(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    for text, error in (
        (GOOD.replace('"> 10"', '"lots"'), "rule 'many-errors' critical: expected a comparison"),
        (GOOD + "treshold = 3\n", "rule 'many-errors' treshold: unknown key"),
        ("name = \n", "not valid TOML"),
        ("", "toml: write the rule's keys"),
    ):
        answer = post(server, http, jar, "/alerts/rules", mode="create", toml=text)
        assert answer.status_code == 400, text
        assert error in shown_error(answer.text)
        assert textarea(answer.text) == text  # what was typed is still there
    assert stored(server, "many-errors").status_code == 404


def test_it_edits_and_deletes_an_added_rule(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    post(server, http, jar, "/alerts/rules", mode="create", toml=GOOD)
    again = post(server, http, jar, "/alerts/rules", mode="create", toml=GOOD)
    assert again.status_code == 409 and "exists" in shown_error(again.text)
    edited = post(
        server, http, jar, "/alerts/rules", mode="edit", name="many-errors", toml=GOOD.replace("> 10", "> 50")
    )
    assert edited.status_code == 303 and stored(server, "many-errors").json()["critical"] == "> 50"
    deleted = post(server, http, jar, "/alerts/rules/many-errors/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/alerts"
    assert stored(server, "many-errors").status_code == 404


def test_it_keeps_file_rules_read_only(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    own = page(server, http, jar, "/alerts/from-file")
    assert "comes from the rules file" in own and "Delete rule" not in own
    refused = post(
        server, http, jar, "/alerts/rules", mode="create", toml=GOOD.replace("many-errors", "from-file")
    )
    assert refused.status_code == 409 and "read-only" in shown_error(refused.text)
    gone = post(server, http, jar, "/alerts/rules/from-file/delete")
    assert gone.status_code == 409 and "read-only" in shown_error(gone.text)
    assert stored(server, "from-file").json()["critical"] == "> 100"


def test_it_refuses_a_rule_form_without_the_csrf_token_or_from_another_site(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    bare = http.post(f"{server.url}/alerts/rules", data={"mode": "create", "toml": GOOD}, headers=jar)
    assert bare.status_code == 403 and "CSRF" in bare.text
    csrf = csrf_of(page(server, http, jar, "/alerts"))
    foreign = http.post(
        f"{server.url}/alerts/rules",
        data={"csrf": csrf, "mode": "create", "toml": GOOD},
        headers={**jar, "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert stored(server, "many-errors").status_code == 404
