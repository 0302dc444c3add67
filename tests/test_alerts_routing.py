"""Routing error records to alerts: the seed's table, matchers, continue, TOML files, bad routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import opswatch
from opswatch import ConfigError
from opswatch.alerts import Router, default_routes, parse_routes
from opswatch.alerts.routing import load_routes_file
from opswatch.alerts.testing import capture_alerts

SLACK = "https://hooks.slack.com/services/T000/B000/XXXX"


@pytest.fixture(autouse=True)
def quiet() -> Iterator[None]:
    opswatch.init(console=False, capture_stdlib=False)
    yield
    opswatch.shutdown()


def record(operation: str | None, level: str = "error", **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"level": level, "logger": "app", "message": "m", **fields}
    if operation is not None:
        out["operation"] = operation
    return out


def routed(router: Router, operation: str | None, level: str = "error", **fields: Any) -> list[str]:
    return [route.name for route in router.route(record(operation, level, **fields))]


SEED = Router(default_routes())


@pytest.mark.parametrize(
    ("operation", "level", "route"),
    [
        ("payment.stripe.charge", "error", "payment"),  # the seed's troubleshooting example
        ("payment.process", "error", "payment"),
        ("stripe.webhook.verify", "error", "payment"),
        ("recurring_payments.charge", "error", "payment"),
        ("db.query", "error", "database"),
        ("donations.database.write", "error", "database"),
        ("cron.check_expired_subscriptions.error", "error", "cron"),
        ("email.campaign.send", "error", "campaign"),
        ("campaign.send_failed", "error", "campaign"),
        ("performance.critical.db.donations.findMany", "error", "slow-query"),
        ("performance.critical.api.donations.list", "error", "slow-query"),
        ("donations.create", "fatal", "fatal"),
        (None, "fatal", "fatal"),
    ],
)
def test_it_routes_the_seeds_table(operation: str | None, level: str, route: str) -> None:
    assert routed(SEED, operation, level) == [route]


@pytest.mark.parametrize(
    "operation",
    [
        "repayment.sync",  # "payment" inside another word is not a payment
        "donations.create",  # the seed's "won't trigger" example
        "mongodb.query",
        "cron.cleanup.start",
        "metrics.email.campaign_sent",
        "campaign.render",
        "performance.warn.donations.list",
    ],
)
def test_it_does_not_route_what_the_seeds_table_does_not_name(operation: str) -> None:
    assert routed(SEED, operation) == []


def test_it_only_routes_error_and_fatal_by_default() -> None:
    assert routed(SEED, "payment.stripe.charge", "warn") == []
    assert SEED.level == 40


def test_it_lets_a_glob_say_exactly_what_it_says() -> None:
    router = Router(parse_routes([{"name": "loose", "operation": "*payment*"}]))
    assert routed(router, "repayment.sync") == ["loose"]
    router = Router(parse_routes([{"name": "strict", "operation": ["payment.*", "*.payment.*"]}]))
    assert routed(router, "repayment.sync") == []
    assert routed(router, "api.payment.create") == ["strict"]


def test_it_anchors_regular_expressions_at_both_ends() -> None:
    router = Router(parse_routes([{"name": "r", "operation": "re:pay(ment)?"}]))
    assert routed(router, "payment") == ["r"]
    assert routed(router, "repayment") == []
    assert routed(router, "payments") == []


def test_it_matches_on_logger_level_and_fields() -> None:
    router = Router(
        parse_routes(
            [
                {
                    "name": "vip",
                    "level": "warn",
                    "logger": "billing.*",
                    "fields": {"church_id": ["42", "43"], "error.type": "*CardError", "live": "true"},
                }
            ]
        )
    )
    vip = {"church_id": 42, "error": {"type": "stripe.CardError"}, "live": True}
    assert routed(router, "x", "warn", **vip) == []  # logger "app" is not billing.*
    billing = record("x", "warn", **vip) | {"logger": "billing.charges"}
    assert [r.name for r in router.route(billing)] == ["vip"]
    assert [r.name for r in router.route(billing | {"church_id": 7})] == []
    assert [r.name for r in router.route(billing | {"level": "info"})] == []
    assert router.level == 30


def test_it_stops_at_the_first_match_unless_the_route_says_continue() -> None:
    tables = [
        {"name": "audit", "operation": "payment.*", "continue": True},
        {"name": "payments", "operation": "payment.*", "template": "payment_failed"},
        {"name": "never", "operation": "*"},
    ]
    assert routed(Router(parse_routes(tables)), "payment.charge") == ["audit", "payments"]
    assert routed(Router(parse_routes(tables)), "other") == ["never"]


def test_it_puts_the_seeds_routes_where_a_list_includes_them() -> None:
    tables = [{"name": "first", "operation": "checkout.*"}, {"include": "defaults"}]
    router = Router(parse_routes(tables))
    assert [r.name for r in router.routes][:3] == ["first", "slow-query", "payment"]
    assert routed(router, "checkout.submit") == ["first"]
    assert routed(router, "payment.charge") == ["payment"]


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"name": "payments", "template": "payment_fail"}, "unknown template 'payment_fail'"),
        ({"name": "payments", "operation": "re:pay(ment"}, "bad regular expression"),
        ({"name": "payments", "channel": "pagerduty"}, "unknown channel 'pagerduty'"),
        ({"name": "payments", "operaton": "payment.*"}, "unknown key 'operaton'"),
        ({"name": "payments", "level": "loud"}, "unknown level 'loud'"),
        ({"name": "payments", "continue": "yes"}, "continue must be true or false"),
        ({"name": "payments", "operation": []}, "non-empty list of patterns"),
        ({"name": "payments", "link": "ftp://x/{event_id}"}, "link must be an http(s) URL"),
    ],
)
def test_it_fails_at_init_naming_the_invalid_route(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        opswatch.init(
            console=False,
            alerts_enabled=True,
            slack_webhook_url=SLACK,
            alert_routes=[{"name": "ok", "operation": "x.*"}, table],
        )
    assert caught.value.setting == "alert_routes"
    assert "route 'payments' (#2)" in str(caught.value)
    assert problem in str(caught.value)


def test_it_refuses_two_routes_with_the_same_name() -> None:
    with pytest.raises(ConfigError, match="route 'a' \\(#2\\): another route has the same name"):
        parse_routes([{"name": "a"}, {"name": "a"}])


def test_it_reads_routes_from_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(
        """
[[routes]]
name = "checkout"
operation = ["checkout.*", "re:cart\\\\.(add|remove)"]
template = "payment_failed"
channel = "slack"
link = "https://ops.example.com/events/{event_id}"

[[routes]]
include = "defaults"
"""
    )
    settings = opswatch.init(
        console=False, alerts_enabled=True, slack_webhook_url=SLACK, alerts_file=str(path)
    )
    assert settings.alerts_file == str(path)
    router = Router(parse_routes(load_routes_file(str(path))))
    assert routed(router, "cart.add") == ["checkout"]
    assert router.routes[0].link_for({"event_id": "abc"}) == "https://ops.example.com/events/abc"


def test_it_names_the_file_and_the_route_when_the_toml_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text('[[routes]]\nname = "bad"\ntemplate = "nope"\n')
    with pytest.raises(ConfigError) as caught:
        opswatch.init(console=False, alerts_enabled=True, slack_webhook_url=SLACK, alerts_file=str(path))
    assert caught.value.setting == "alerts_file" and "route 'bad'" in str(caught.value)
    path.write_text("[[routes]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        opswatch.init(console=False, alerts_enabled=True, slack_webhook_url=SLACK, alerts_file=str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        opswatch.init(
            console=False, alerts_enabled=True, slack_webhook_url=SLACK, alerts_file=str(tmp_path / "missing")
        )


def test_it_turns_logged_errors_into_the_routed_alerts() -> None:
    log = opswatch.get_logger("donations")
    with capture_alerts() as alerts:
        log.error(
            "Payment failed", {"operation": "payment.stripe.charge", "amount": 100}, ValueError("declined")
        )
        log.error("Sync failed", operation="repayment.sync")
        log.error("Query failed", operation="db.query", error=RuntimeError("deadlock"))
        log.warn("Slow", operation="payment.stripe.charge")
        log.fatal("Out of memory")
    assert [a.title for a in alerts] == ["Payment Failure", "Database Error", "Fatal Error"]
    assert alerts[0].error == "ValueError: declined"
    assert dict(alerts[0].facts)["Amount"] == "$100.00"
    assert alerts[2].summary == "Out of memory"


def test_it_fans_out_with_continue_to_several_channels() -> None:
    routes = [
        {"name": "everything", "channel": "audit", "continue": True, "template": "alert"},
        {"name": "payments", "operation": "payment.*", "channel": "slack", "template": "payment_failed"},
    ]
    log = opswatch.get_logger("donations")
    with capture_alerts(routes) as alerts:
        log.error("Payment failed", operation="payment.charge")
    assert [a.title for a in alerts.by_channel("audit")] == ["Payment failed"]
    assert [a.title for a in alerts.by_channel("slack")] == ["Payment Failure"]
