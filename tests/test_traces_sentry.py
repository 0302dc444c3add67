"""Sentry's spans become spans: a transaction from the real sentry-sdk as its root plus one span per
child, span streaming items (span v2) as spans, and every skipped item type counted in /metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sentry_sdk

from opswatch.server.query import run_query
from opswatch.server.testing import RunningServer, running_server

TRACE = "5b8efff798038103d269b633813fc60c"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        yield running


@pytest.fixture
def sentry(server: RunningServer) -> Iterator[None]:
    sentry_sdk.init(
        dsn=server.dsn,
        release="donations@1.4.2",
        environment="staging",
        server_name="web-1",
        traces_sample_rate=1.0,
        auto_session_tracking=False,
        send_client_reports=False,
        default_integrations=False,
    )
    yield
    sentry_sdk.flush(timeout=30)
    sentry_sdk.get_client().close(timeout=5)
    sentry_sdk.get_global_scope().set_client(None)


def sql(server: RunningServer, text: str) -> list[tuple[Any, ...]]:
    return run_query(server.ctx.store, text).rows


def test_a_sentry_sdk_transaction_becomes_its_root_span_and_one_span_per_child(
    server: RunningServer, sentry: None
) -> None:
    with sentry_sdk.start_transaction(name="POST /donations", op="http.server") as transaction:
        sentry_sdk.set_tag("service", "donations-api")
        with sentry_sdk.start_span(op="db.query", name="INSERT donation") as insert:
            insert.set_data("db.system", "postgresql")
            with sentry_sdk.start_span(op="http.client", name="POST https://payments.example/charge") as call:
                call.set_status("internal_error")
        with sentry_sdk.start_span(op="template.render", name="receipt.html"):
            pass
    sentry_sdk.flush(timeout=30)
    found = sql(
        server,
        f"""
        SELECT name, kind, parent_span_id, status, status_message, service, environment, release, host,
               attributes->>'$."sentry.op"', attributes->>'$."db.system"', span_id
        FROM spans WHERE trace_id = '{transaction.trace_id}' ORDER BY timestamp, name""",
    )
    root, db, http, template = found
    assert root[:2] == ("POST /donations", "server") and root[2] is None
    assert root[5:9] == ("donations-api", "staging", "donations@1.4.2", "web-1")
    assert root[11] == transaction.span_id
    assert db[:3] == ("INSERT donation", "client", transaction.span_id)
    assert db[9:11] == ("db.query", "postgresql")
    assert http[:5] == ("POST https://payments.example/charge", "client", db[11], "error", "internal_error")
    assert template[:3] == ("receipt.html", "internal", transaction.span_id)
    # the transaction's own row in logs stays as it was
    kinds = sql(server, f"SELECT kind, message FROM logs WHERE trace_id = '{transaction.trace_id}'")
    assert kinds == [("transaction", "POST /donations")]
    joined = sql(
        server, "SELECT count(*) FROM spans s JOIN logs l USING (trace_id) WHERE l.kind = 'transaction'"
    )
    assert joined == [(4,)]


def envelope(server: RunningServer, *items: tuple[dict[str, Any], bytes]) -> httpx.Response:
    lines = [orjson.dumps({"dsn": server.dsn})]
    for header, payload in items:
        lines += [orjson.dumps(header), payload]
    return httpx.post(
        f"{server.url}/api/{server.project_id}/envelope/",
        content=b"\n".join(lines),
        headers={"x-sentry-auth": f"Sentry sentry_key={server.key}, sentry_version=7"},
    )


def v2_span(span_id: str, **fields: Any) -> dict[str, Any]:
    start = time.time()
    span = {
        "trace_id": TRACE,
        "span_id": span_id,
        "name": "GET /users",
        "status": "ok",
        "is_segment": True,
        "start_timestamp": start,
        "end_timestamp": start + 0.0225,
        "attributes": {
            "sentry.op": {"type": "string", "value": "http.server"},
            "sentry.environment": {"type": "string", "value": "production"},
            "sentry.release": {"type": "string", "value": "web@3.0.0"},
            "http.response.status_code": {"type": "integer", "value": 200},
        },
    }
    span.update(fields)
    return span


def test_span_streaming_items_become_spans(server: RunningServer) -> None:
    items = {
        "items": [
            v2_span("438f40bd3b4a41ee"),
            v2_span(
                "f1196292f76e45c0",
                parent_span_id="438f40bd3b4a41ee",
                name="app.handle",
                is_segment=False,
                status="error",
                kind="internal",
            ),
            v2_span("zz"),
        ]
    }
    header = {"type": "span", "item_count": 3, "content_type": "application/vnd.sentry.items.span.v2+json"}
    assert envelope(server, (header, orjson.dumps(items))).status_code == 200
    found = sql(
        server,
        """SELECT span_id, parent_span_id, name, kind, status, environment, release,
        round(duration_ms, 1), attributes->'$."http.response.status_code"' FROM spans ORDER BY span_id""",
    )
    assert found == [
        ("438f40bd3b4a41ee", None, "GET /users", "server", "ok", "production", "web@3.0.0", 22.5, "200"),
        (
            "f1196292f76e45c0",
            "438f40bd3b4a41ee",
            "app.handle",
            "internal",
            "error",
            "production",
            "web@3.0.0",
            22.5,
            "200",
        ),
    ]
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'opswatch_spans_rejected_total{reason="invalid_span",source="sentry"} 1' in metrics
    assert 'opswatch_spans_accepted_total{source="sentry"} 2' in metrics


def test_every_skipped_item_type_is_counted_in_metrics(server: RunningServer) -> None:
    answer = envelope(
        server,
        ({"type": "session"}, b'{"sid":"x"}'),
        ({"type": "client_report"}, b"{}"),
        ({"type": "client_report"}, b"{}"),
        ({"type": "made_up_type_1"}, b"{}"),
    )
    assert answer.status_code == 200
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'opswatch_sentry_items_skipped_total{type="session"} 1' in metrics
    assert 'opswatch_sentry_items_skipped_total{type="client_report"} 2' in metrics
    assert 'opswatch_sentry_items_skipped_total{type="other"} 1' in metrics
