"""SDK spans: ``opswatch.span`` as ``with``, ``async with`` and a decorator, nested into one trace, logs
inside carrying the span's ids, shipped through the server transport into the server's ``spans`` table
(redacted before they leave the process), an incoming ``traceparent`` continued."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import opswatch
from opswatch.server.query import run_query
from opswatch.server.testing import RunningServer, running_server


def sql(server: RunningServer, text: str) -> list[tuple[Any, ...]]:
    return run_query(server.ctx.store, text).rows


@pytest.fixture
def server(tmp_path: Path) -> Any:
    with running_server(tmp_path) as running:
        opswatch.init(dsn=running.dsn, service="donations-api", console=False, capture_stdlib=False,
                      spool_dir=str(tmp_path / "spool"))  # fmt: skip
        yield running


@opswatch.span("charge card", kind="client", attributes={"payment.provider": "stripe"})
def charge(amount: int) -> int:
    opswatch.logger.info("charging", amount=amount)
    return amount * 2


@opswatch.span("send receipt")
async def send_receipt(email: str) -> str:
    await asyncio.sleep(0)
    return email


def test_nested_spans_form_one_trace_and_logs_inside_carry_their_ids(server: RunningServer) -> None:
    assert opswatch.current_span() is None
    with opswatch.span("POST /donations", kind="server", attributes={"http.request.method": "POST"}) as root:
        assert opswatch.current_span() is root
        assert charge(5) == 10
        assert asyncio.run(send_receipt("jane.doe@example.com")) == "jane.doe@example.com"
        opswatch.logger.info("donation stored", church_id="church-9")
    assert opswatch.current_span() is None
    assert opswatch.flush(10)
    found = sql(
        server,
        f"""SELECT name, kind, parent_span_id, status, service, attributes FROM spans
        WHERE trace_id = '{root.trace_id}' ORDER BY timestamp""",
    )
    assert [(row[0], row[1], row[2], row[3], row[4]) for row in found] == [
        ("POST /donations", "server", None, "unset", "donations-api"),
        ("charge card", "client", root.span_id, "unset", "donations-api"),
        ("send receipt", "internal", root.span_id, "unset", "donations-api"),
    ]
    assert orjson.loads(found[1][5]) == {"payment.provider": "stripe"}
    logs = sql(
        server,
        f"""SELECT message, span_id FROM logs WHERE trace_id = '{root.trace_id}'
        ORDER BY timestamp, message""",
    )
    charge_id = sql(server, "SELECT span_id FROM spans WHERE name = 'charge card'")[0][0]
    assert sorted(logs) == [("charging", charge_id), ("donation stored", root.span_id)]
    assert sql(server, "SELECT count(*) FROM logs WHERE kind = 'span'") == [(0,)]


def test_async_with_and_an_error_mark_the_span(server: RunningServer) -> None:
    async def work() -> None:
        async with opswatch.span("refund", refund_id="r-9"):
            raise LookupError("no such donation")

    with pytest.raises(LookupError):
        asyncio.run(work())
    assert opswatch.flush(10)
    assert sql(server, "SELECT name, status, status_message, attributes->>'refund_id' FROM spans") == [
        ("refund", "error", "LookupError: no such donation", "r-9")
    ]


def test_span_attributes_are_redacted_before_they_leave_the_process(server: RunningServer) -> None:
    with opswatch.span("notify", password="hunter2", attributes={"user.email": "jane.doe@example.com"}):
        pass
    assert opswatch.flush(10)
    ((attributes,),) = sql(server, "SELECT attributes FROM spans")
    assert "hunter2" not in attributes and "jane.doe@example.com" not in attributes


def test_the_first_span_continues_the_trace_bound_in_the_context(server: RunningServer) -> None:
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with opswatch.context(trace_id=trace_id, span_id=parent), opswatch.span("handle") as made:
        assert made.trace_id == trace_id
    assert opswatch.flush(10)
    assert sql(server, "SELECT trace_id, parent_span_id FROM spans") == [(trace_id, parent)]


def test_a_native_span_record_the_server_cannot_store_is_rejected_at_its_line(server: RunningServer) -> None:
    good = {
        "kind": "span",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "name": "job",
        "span_kind": "internal",
        "start_unix_nano": 1_764_756_000_000_000_000,
        "duration_ms": 1.5,
        "timestamp": "2025-12-03T10:00:00.000Z",
        "level": "info",
        "message": "job",
    }
    bad = {**good, "span_id": "nope"}
    log = {"timestamp": "2025-12-03T10:00:00.000Z", "level": "info", "message": "a log"}
    body = b"\n".join(orjson.dumps(line) for line in (log, bad, good))
    answer = httpx.post(f"{server.url}/api/{server.project_id}/events/", content=body,
                        headers={"authorization": f"Bearer {server.key}"})  # fmt: skip
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 2
    assert [r["index"] for r in answer.json()["rejected"]] == [1]
    assert sql(server, "SELECT name, duration_ms FROM spans") == [("job", 1.5)]


def test_tracked_calls_and_timers_are_spans_inside_the_current_span(server: RunningServer) -> None:
    with opswatch.span("import donations") as root:
        rows = opswatch.track_query("donations.findMany", lambda: [1, 2])
        with opswatch.track_external_call("stripe.payment_intent.create"):
            pass
        opswatch.start_timer("reconcile").end()
    assert rows == [1, 2]
    assert opswatch.flush(10)
    found = sql(
        server,
        f"""SELECT name, kind, parent_span_id, attributes->>'$."opswatch.perf.kind"',
        attributes->>'$."db.query.summary"' FROM spans WHERE trace_id = '{root.trace_id}' AND name != 'import donations'
        ORDER BY name""",
    )
    assert found == [
        ("donations.findMany", "client", root.span_id, "db", "donations.findMany"),
        ("reconcile", "internal", root.span_id, "api", None),
        ("stripe.payment_intent.create", "client", root.span_id, "external", None),
    ]
