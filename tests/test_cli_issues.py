"""``opswatch issues`` against a real server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from opswatch.cli import main
from opswatch.cli.issues import parse_duration, sparkline
from opswatch.record import format_timestamp, serialize_exception
from opswatch.server.testing import RunningServer, running_server
from state_databases import ENGINES, state_url

pytestmark = pytest.mark.slow


class PaymentError(Exception):
    pass


def charge_card(donation_id: int) -> None:
    raise PaymentError(f"Payment failed for donation {donation_id}")


def error_record(n: int) -> dict[str, Any]:
    try:
        charge_card(n)
    except PaymentError as err:
        error = serialize_exception(err)
    return {
        "event_id": f"{n:032x}",
        "timestamp": format_timestamp(time.time()),
        "level": "error",
        "message": "payment failed",
        "operation": "payment.stripe.charge",
        "release": "2.4.1",
        "environment": "production",
        "error": error,
    }


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module, its state on SQLite and again on PostgreSQL (``state_databases``)."""
    directory = tmp_path_factory.mktemp("cli")
    for database_url in state_url(request.param, directory):
        with running_server(directory, database_url=database_url, leader_election="off") as running:
            answer = httpx.post(
                f"{running.url}/api/{running.project_id}/events/",
                content=b"".join(orjson.dumps(error_record(n)) + b"\n" for n in (1, 2, 3)),
                headers={"Authorization": f"Bearer {running.key}"},
                trust_env=False,
            )
            assert answer.status_code == 200
            yield running


def run(server: RunningServer, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["issues", *argv, "--url", server.url, "--token", server.admin_token])
    out, err = capsys.readouterr()
    return code, out, err


def test_it_lists_issues_as_json_and_as_a_table(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(server, capsys, "list", "--format", "json")
    assert code == 0
    page = json.loads(out)
    assert page["total"] == 1
    assert page["items"][0]["count"] == 3
    code, out, _ = run(server, capsys, "list")
    assert code == 0
    assert "PaymentError: Payment failed" in out


def test_it_shows_one_issue(server: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    issue_id = json.loads(run(server, capsys, "list", "--format", "json")[1])["items"][0]["id"]
    code, out, _ = run(server, capsys, "show", str(issue_id))
    assert code == 0
    assert "charge_card" in out
    assert "2.4.1 (3)" in out
    assert "created" in out


def test_it_resolves_ignores_and_reopens(server: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    issue_id = str(json.loads(run(server, capsys, "list", "--format", "json")[1])["items"][0]["id"])
    assert run(server, capsys, "resolve", issue_id)[1].startswith(f"#{issue_id} resolved")
    code, out, _ = run(server, capsys, "ignore", issue_id, "--for", "2h", "--format", "json")
    assert code == 0 and json.loads(out)["ignore_until"] is not None
    assert run(server, capsys, "reopen", issue_id)[1].startswith(f"#{issue_id} unresolved")
    code, out, _ = run(server, capsys, "show", issue_id, "--format", "json")
    actors = {a["actor"] for a in json.loads(out)["activity"] if a["kind"] != "created"}
    assert len(actors) == 1 and actors.pop().startswith("cli:")


def test_it_exits_with_a_reason(server: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(server, capsys, "show", "424242")
    assert code == 2 and "no issue 424242" in err
    code, _, err = run(server, capsys, "list", "--status", "open-ish")
    assert code == 2 and "status" in err
    code, _, err = run(server, capsys, "ignore", "1", "--for", "soon")
    assert code == 2 and "--for" in err
    code = main(["issues", "list", "--url", server.url, "--token", "wrong"])
    assert code == 2 and "token" in capsys.readouterr().err


def test_it_reads_durations_and_draws_sparklines() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("30m") == 1800
    assert parse_duration("1w") == 604800
    assert sparkline([0, 1, 2, 4]) == "▁▃▅█"
    assert sparkline([0, 0]) == "▁▁"


class GatewayTimeout(Exception):
    pass


def call_gateway() -> None:
    raise GatewayTimeout("the card gateway did not answer in 10 s")


def charge_with_cause() -> None:
    try:
        call_gateway()
    except GatewayTimeout as err:
        raise PaymentError("Payment failed for donation 7") from err


def test_it_shows_the_cause_chain_as_the_page_does(tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        charge_with_cause()
    except PaymentError as err:
        error = serialize_exception(err)
    record = error_record(7) | {"event_id": f"{70:032x}", "error": error}
    with running_server(tmp_path_factory.mktemp("chain")) as chained:
        answer = httpx.post(
            f"{chained.url}/api/{chained.project_id}/events/", content=orjson.dumps(record) + b"\n",
            headers={"Authorization": f"Bearer {chained.key}"}, trust_env=False,
        )  # fmt: skip
        assert answer.status_code == 200
        code, out, _ = run(chained, capsys, "show", "1")
    assert code == 0
    lines = out.splitlines()
    raised = next(i for i, line in enumerate(lines) if "PaymentError: Payment failed for donation 7" in line)
    caused = lines.index("   caused by")
    cause = next(i for i, line in enumerate(lines) if "GatewayTimeout: the card gateway did not answer" in line)
    assert raised < caused < cause  # the raised one first, then its cause, as on the issue page
    assert any("in call_gateway" in line for line in lines[caused:cause])  # with the cause's own frames
