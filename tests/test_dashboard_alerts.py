"""The Alerts pages over HTTP: rules with their state, a rule's signal chart, history, and silences
created and expired through the forms.

The cast: a server with a fixed clock and two rules, ``checkout-errors`` (error ratio over a minute,
which fired, resolved and fires again) and ``search-slow`` (p95 latency, quiet); rounds are run by
hand at known times (the background rule clock never starts, so no round of its own races them, nor
runs at the page's now before the data is there), and a viewer logs in with the form, whose changes carry the page's CSRF token.
"""

from __future__ import annotations

import datetime
import html as html_text
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dashboard_http import cookieless_client, csrf_of, login, signed_in
from opswatch.server import limits
from opswatch.server.rules import rules_for
from opswatch.server.rules.machine import Instance, RuleStatus
from opswatch.server.testing import RunningServer, running_server
from opswatch.server.ui.alerts import rule_state
from opswatch.server.ui.signal_chart import signal_series
from rules_cast import T0
from rules_cast import request as served_request
from state_databases import ENGINES, state_url

pytestmark = pytest.mark.slow

RULES = """
[[rules]]
name = "checkout-errors"
signal = "error_ratio"
where = "service = 'checkout'"
window = "1m"
warning = "> 0.2"
critical = "> 0.5"
resolve = "< 0.1"
labels = { team = "payments" }

[[rules]]
name = "search-slow"
signal = "p95"
where = "service = 'search'"
window = "5m"
critical = "> 1000"
"""
NOW = T0 + 660


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module, its state (rules, silences) on SQLite and again on PostgreSQL."""
    tmp = tmp_path_factory.mktemp("alerts")
    path = tmp / "rules.toml"
    path.write_text(RULES)
    fixed = datetime.datetime.fromtimestamp(NOW, datetime.UTC)
    settings: dict[str, Any] = {"rules_file": path, "rules_ingest_delay": 0, "rules_defaults": False}
    for database_url in state_url(request.param, tmp):
        with running_server(
            tmp, now=lambda: fixed, database_url=database_url, leader_election="off", rule_clock=False, **settings
        ) as running:
            store, service = running.ctx.store, rules_for(running.ctx).service
            store.append([served_request(T0 + 60 + i, level="error") for i in range(10)])  # fires at T0+120
            store.append([served_request(T0 + 250 + i) for i in range(10)])  # resolves at T0+300
            store.append([served_request(T0 + 560 + i, level="error") for i in range(10)])  # fires again at T0+600
            store.append([served_request(T0 + 500 + i, service="search", duration_ms=200.0) for i in range(5)])
            for at in (T0 + 120, T0 + 300, T0 + 600):
                service.run_once(at)
            yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with cookieless_client() as client:
        yield client


@pytest.fixture
def jar(server: RunningServer, http: httpx.Client) -> dict[str, str]:
    """Headers of a viewer logged in with the form."""
    return signed_in(login(server, http))


def get(server: RunningServer, http: httpx.Client, jar: dict[str, str], path: str) -> str:
    answer = http.get(f"{server.url}{path}", headers=jar)
    assert answer.status_code == 200, answer.text
    return answer.text


def row(html: str, marker: str) -> str:
    """The table row carrying ``marker`` (e.g. ``data-rule="x"``)."""
    found = re.search(rf"<tr {re.escape(marker)}>(.*?)</tr>", html, re.S)
    assert found is not None, marker
    return html_text.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip())


def silence_form(server: RunningServer, http: httpx.Client, jar: dict[str, str], page: str = "/alerts",
                 **fields: str) -> httpx.Response:
    csrf = csrf_of(get(server, http, jar, page))
    data = {"csrf": csrf, "next": page, **fields}
    return http.post(f"{server.url}/alerts/silences", data=data, headers=jar)


def silences(server: RunningServer, http: httpx.Client) -> list[dict[str, Any]]:
    answer = http.get(f"{server.url}/api/0/silences", headers=server.admin_headers)
    assert answer.status_code == 200
    return list(answer.json()["items"])


def test_it_lists_each_rule_with_state_severity_value_thresholds_and_since(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    html = get(server, http, jar, "/alerts")
    checkout = row(html, 'data-rule="checkout-errors"')
    assert checkout.startswith("checkout-errors firing critical")
    assert "error_ratio over 1m" in checkout and " 1 " in f" {checkout} "  # every request failed
    assert "warning > 0.2 critical > 0.5 resolve < 0.1" in checkout
    assert "1 min ago" in checkout  # firing since T0+600, the page's now is T0+660
    search = row(html, 'data-rule="search-slow"')
    assert search.startswith("search-slow inactive") and "critical > 1000" in search and "200" in search
    assert html.index('data-rule="checkout-errors"') < html.index('data-rule="search-slow"')  # firing first
    assert '<a href="/alerts" class="active" aria-current="page">Alerts</a>' in html


def test_it_shows_the_firing_instances_with_labels_and_the_history(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    html = get(server, http, jar, "/alerts")
    active = html.split("<h2>Firing and pending</h2>")[1].split("</table>")[0]
    assert active.count("<tr>") == 2  # the header and one instance
    assert "rule=checkout-errors" in active and "team=payments" in active
    history = html.split("<h2>History</h2>")[1]
    kinds = re.findall(r'class="badge alert-(\w+)">', history)
    assert kinds == ["firing", "resolved", "firing"]  # newest first


def test_it_draws_the_signal_with_its_thresholds_and_shades_the_firing_periods(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    html = get(server, http, jar, "/alerts/checkout-errors")
    svg = html.split('<svg class="signal"')[1].split("</svg>")[0]
    top = 1.15  # the highest value (1.0) and a margin above it
    for name, value in (("critical", 0.5), ("warning", 0.2), ("resolve", 0.1)):
        line = re.search(rf'class="threshold threshold-{name}" x1="0" y1="([\d.]+)"', svg)
        assert line is not None, name
        assert float(line.group(1)) == pytest.approx(160 - value / top * 160, abs=0.01)
    shades = [float(w) for w in re.findall(r'class="firing-period" x="[\d.]+" y="0" width="([\d.]+)"', svg)]
    # the resolved incident (T0+120 .. T0+300) and the one firing now (T0+600 .. now), on a chart of
    # one reading a minute over the last hour (its first reading at now - 59 min)
    assert shades == pytest.approx([180 / 3540 * 600, 60 / 3540 * 600], abs=0.02)
    points = re.findall(r'<polyline points="([^"]+)"', svg)
    ys = [float(p.split(",")[1]) for run in points for p in run.split()]
    assert min(ys) == pytest.approx(160 - 1.0 / top * 160, abs=0.01)  # the ratio reached 1
    assert max(ys) == pytest.approx(160.0)  # and 0 while all requests succeeded
    assert "<title>checkout-errors</title>" in svg  # one line, named after the rule (no group_by)


def test_it_answers_404_for_an_unknown_rule_and_sends_strangers_to_login(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    answer = http.get(f"{server.url}/alerts/nope", headers=jar)
    assert answer.status_code == 404 and "no rule is called" in answer.text
    stranger = http.get(f"{server.url}/alerts/checkout-errors")
    assert stranger.status_code == 303 and stranger.headers["location"].startswith("/login?next=/alerts")


def test_it_creates_a_silence_from_the_form_and_expires_it(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    created = silence_form(
        server, http, jar, "/alerts/checkout-errors", rule="checkout-errors",
        matchers="team=payments\nservice=~check.*", duration="2h", author="ana@example.org",
        comment="deploying the fix",
    )
    assert created.status_code == 303 and created.headers["location"] == "/alerts/checkout-errors"
    [silence] = [s for s in silences(server, http) if s["comment"] == "deploying the fix"]
    assert silence["matchers"] == [
        {"name": "rule", "value": "checkout-errors", "regex": False},
        {"name": "team", "value": "payments", "regex": False},
        {"name": "service", "value": "check.*", "regex": True},
    ]
    assert silence["starts_at"] == NOW and silence["ends_at"] == NOW + 7200 and silence["state"] == "active"
    shown = row(get(server, http, jar, "/alerts/checkout-errors"), f'data-silence="{silence["id"]}"')
    assert "rule=checkout-errors team=payments service=~check.*" in shown and "active" in shown
    assert "in 2 h" in shown and "ana@example.org" in shown and "Expire" in shown

    page = get(server, http, jar, "/alerts")
    csrf = csrf_of(page)
    expired = http.post(f"{server.url}/alerts/silences/{silence['id']}/expire",
                        data={"csrf": csrf, "next": "/alerts"}, headers=jar)
    assert expired.status_code == 303 and expired.headers["location"] == "/alerts"
    after = row(get(server, http, jar, "/alerts"), f'data-silence="{silence["id"]}"')
    assert "expired" in after and "Expire" not in after


def test_it_refuses_a_bad_silence_naming_the_field_and_keeps_what_was_typed(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    before = len(silences(server, http))
    cases = (
        ({"rule": "checkout-errors", "duration": "2h"}, "author:"),
        ({"matchers": "service=~(", "duration": "1h", "author": "ana"}, "not a regular expression"),
        ({"matchers": "service", "duration": "1h", "author": "ana"}, "matchers, line 1"),
        ({"rule": "checkout-errors", "duration": "soon", "author": "ana"}, "duration:"),
        ({"rule": "checkout-errors", "ends_at": "tomorrow", "author": "ana"}, "ends_at:"),
        ({"duration": "1h", "author": "ana"}, "matchers:"),
    )
    for fields, error in cases:
        answer = silence_form(server, http, jar, "/alerts", comment="kept-comment", **fields)
        assert answer.status_code == 400, fields
        alert = re.search(r'<p class="alert" role="alert">([^<]*)</p>', answer.text)
        assert alert is not None and error in alert.group(1), (fields, alert)
        assert 'value="kept-comment"' in answer.text
    assert len(silences(server, http)) == before


def test_it_refuses_a_silence_form_without_the_csrf_token(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    before = len(silences(server, http))
    data = {"rule": "checkout-errors", "duration": "1h", "author": "mallory"}
    answer = http.post(f"{server.url}/alerts/silences", data=data, headers=jar)
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert len(silences(server, http)) == before


def test_it_sends_a_silence_made_for_an_end_time_to_that_time(
    server: RunningServer, http: httpx.Client, jar: dict[str, str]
) -> None:
    created = silence_form(server, http, jar, rule="=~search-.*", starts_at="2026-11-29T13:00",
                           ends_at="2026-11-29T15:30", author="bo", comment="maintenance window")
    assert created.status_code == 303
    [silence] = [s for s in silences(server, http) if s["comment"] == "maintenance window"]
    assert silence["matchers"] == [{"name": "rule", "value": "search-.*", "regex": True}]
    assert silence["starts_at"] == T0 + 3600 and silence["ends_at"] == T0 + 3.5 * 3600
    assert silence["state"] == "pending"
    shown = get(server, http, jar, "/alerts/search-slow")
    assert f'data-silence="{silence["id"]}"' in shown  # it can mute this rule
    assert f'data-silence="{silence["id"]}"' not in get(server, http, jar, "/alerts/checkout-errors")


def test_a_rules_chart_keeps_to_its_time_budget_newest_points_first(server: RunningServer) -> None:
    service = rules_for(server.ctx).service
    rule = service.rule("checkout-errors")
    ticks = iter(range(1000))  # a clock that advances one second each time it is read

    def clock() -> float:
        return float(next(ticks))

    budget = limits.RULES_CHART_BUDGET_SECONDS
    cut = signal_series(rule, service.source, NOW, 0, budget=budget, clock=clock)
    [series] = cut.series
    points = len(cut.times)
    computed = int(budget) - 1  # read at 1, 2, 3, 4 s after the start; stopped when 5 s had passed
    assert cut.errors == (
        f"the chart stopped after {budget:g} s; its {points - computed} oldest points are left out",
    )
    assert series.values[: points - computed] == (None,) * (points - computed)
    whole = signal_series(rule, service.source, NOW, 0, budget=budget, clock=lambda: 0.0)
    assert whole.errors == () and whole.series[0].values[-computed:] == series.values[-computed:]
    assert 1.0 in series.values[-computed:]  # the window that ended at T0+600, all errors, was computed


@pytest.mark.parametrize(
    ("status", "instances", "expected"),
    [
        (RuleStatus(), [], ("inactive", None, None)),
        (RuleStatus(error="no such column: amount", error_since=T0), [], ("error", None, T0)),
        (RuleStatus(waiting=("amount",)), [], ("no data", None, None)),
        (RuleStatus(), [Instance("a", {}, health="nodata")], ("no data", None, None)),
        (RuleStatus(), [Instance("a", {}, "pending", "warning", pending_since=T0)], ("pending", "warning", T0)),
        (
            RuleStatus(),
            [
                Instance("a", {}, "pending", "warning", value=0.3, pending_since=T0 + 60),
                Instance("b", {}, "firing", "critical", value=0.9, firing_since=T0, pending_since=T0 - 60),
            ],
            ("firing", "critical", T0),
        ),
        (RuleStatus(), [Instance("a", {}, "firing", "critical", firing_since=T0, flapping=True)],
         ("flapping", "critical", T0)),
        (RuleStatus(), [Instance("a", {}, "inactive", flapping=True, resolved_at=T0)], ("flapping", None, None)),
        (
            RuleStatus(error="timeout", error_since=T0 + 5),
            [Instance("a", {}, "firing", "critical", firing_since=T0)],
            ("error", "critical", T0 + 5),
        ),
    ],
)
def test_it_sums_a_rule_up_in_one_state_word(
    status: RuleStatus, instances: list[Instance], expected: tuple[str, str | None, float | None]
) -> None:
    shown = rule_state(status, instances)
    assert (shown["state"], shown["severity"], shown["since"]) == expected
