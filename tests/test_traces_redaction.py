"""Redaction on arrival covers spans: names, attributes, events, links and status messages are censored
before they are stored, whichever way the spans came; ids and times are left as they are."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson

from opswatch.server.query import run_query
from opswatch.server.testing import running_server

TRACE = "5b8efff798038103d269b633813fc60c"


def test_it_redacts_span_names_attributes_events_and_status_messages(tmp_path: Path) -> None:
    start = time.time_ns()
    span = {
        "traceId": TRACE,
        "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "1111111111111111",
        "name": "notify jane.doe@example.com",
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 1000),
        "attributes": [
            {"key": "password", "value": {"stringValue": "hunter2"}},
            {"key": "http.request.header.authorization", "value": {"stringValue": "Bearer abcdefgh12345678"}},
            {
                "key": "payment",
                "value": {
                    "kvlistValue": {
                        "values": [{"key": "card", "value": {"stringValue": "4111 1111 1111 1111"}}]
                    }
                },
            },
            {"key": "http.route", "value": {"stringValue": "/donations/{id}"}},
        ],
        "events": [
            {
                "name": "exception",
                "timeUnixNano": str(start),
                "attributes": [
                    {
                        "key": "exception.message",
                        "value": {"stringValue": "login failed for jane.doe@example.com"},
                    }
                ],
            }
        ],
        "links": [
            {
                "traceId": "1" * 32,
                "spanId": "2" * 16,
                "attributes": [{"key": "api_key", "value": {"stringValue": "sk_live_abcdefgh1234"}}],
            }
        ],
        "status": {"code": 2, "message": "card 4111111111111111 declined"},
    }
    body = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    with running_server(tmp_path) as server:
        answer = httpx.post(
            f"{server.url}/api/{server.project_id}/otlp/v1/traces",
            content=body,
            headers={"content-type": "application/json", "x-opswatch-key": server.key},
        )
        assert answer.status_code == 200
        (row,) = run_query(
            server.ctx.store,
            "SELECT name, attributes, events, links, status_message, trace_id, span_id, "
            "parent_span_id FROM spans",
        ).rows
    name, attributes, events, links, message, trace_id, span_id, parent = row
    stored = f"{name} {attributes} {events} {links} {message}"
    for secret in (
        "jane.doe@example.com",
        "hunter2",
        "abcdefgh12345678",
        "4111 1111 1111 1111",
        "4111111111111111",
        "sk_live_abcdefgh1234",
    ):
        assert secret not in stored
    assert name == "notify j***@example.com"
    assert orjson.loads(attributes)["http.route"] == "/donations/{id}"
    assert (trace_id, span_id, parent) == (TRACE, "eee19b7ec3c1b174", "1111111111111111")


def test_it_stores_spans_as_sent_when_redaction_is_off(tmp_path: Path) -> None:
    start = time.time_ns()
    span = {
        "traceId": TRACE,
        "spanId": "eee19b7ec3c1b174",
        "name": "notify jane.doe@example.com",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 1000),
    }
    body = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    with running_server(tmp_path, redact=False) as server:
        httpx.post(
            f"{server.url}/api/{server.project_id}/otlp/v1/traces",
            content=body,
            headers={"content-type": "application/json", "x-opswatch-key": server.key},
        )
        assert run_query(server.ctx.store, "SELECT name FROM spans").rows == [
            ("notify jane.doe@example.com",)
        ]


def test_promoted_span_attribute_columns_and_tail_sampled_spans_hold_redacted_values(tmp_path: Path) -> None:
    from opswatch.server import limits

    start = time.time_ns() - 10**9
    spans = [
        {"traceId": f"{i + 1:032x}", "spanId": f"{i + 1:016x}", "name": "notify", "startTimeUnixNano": str(start),
         "endTimeUnixNano": str(start + 1000),
         "attributes": [{"key": "user.email", "value": {"stringValue": f"user{i}@example.com"}},
                        {"key": "db.statement", "value": {"stringValue": "card 4111111111111111"}}]}
        for i in range(limits.STORE_PROMOTE_AFTER)
    ]  # fmt: skip
    held = {"kind": "span", "trace_id": "a" * 32, "span_id": "b" * 16, "name": "charge jane.doe@example.com",
            "span_kind": "internal", "start_unix_nano": start, "duration_ms": 1.0, "status": "error",
            "sampled": False, "attributes": {"password": "hunter2"}, "message": "span", "level": "info"}  # fmt: skip
    with running_server(tmp_path) as server:
        answer = httpx.post(
            f"{server.url}/api/{server.project_id}/otlp/v1/traces",
            content=orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}),
            headers={"content-type": "application/json", "x-opswatch-key": server.key},
        )
        assert answer.status_code == 200
        assert server.ctx.store.span_catalog.keys["user.email"].column is not None  # a typed column now
        httpx.post(f"{server.url}/api/{server.project_id}/events/", content=orjson.dumps(held),
                   headers={"authorization": f"Bearer {server.key}"})  # fmt: skip
        stored = run_query(
            server.ctx.store, 'SELECT "user.email", "db.statement", name, attributes FROM spans'
        ).rows
    text = repr(stored)
    for secret in ("user5@example.com", "4111111111111111", "jane.doe@", "hunter2"):
        assert secret not in text
    assert ("u***@example.com", "card [REDACTED]") in {(row[0], row[1]) for row in stored}
    assert "charge j***@example.com" in {row[2] for row in stored}  # the unsampled span, kept for its error
