"""OTLP/HTTP traces into opswatch: the real OpenTelemetry SDK and its protobuf exporter against a real
server; OTLP/JSON posted the way the specification writes it; partial success, auth, gzip, limits."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from opswatch.server import limits
from opswatch.server.query import run_query
from opswatch.server.testing import RunningServer, running_server

TRACE = "5b8efff798038103d269b633813fc60c"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        yield running


def sql(server: RunningServer, text: str) -> list[tuple[Any, ...]]:
    return run_query(server.ctx.store, text).rows


def provider(server: RunningServer, **headers: str) -> TracerProvider:
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/api/{server.project_id}/otlp/v1/traces",
        headers=headers or {"authorization": f"Bearer {server.key}"},
    )
    made = TracerProvider(
        resource=Resource.create(
            {
                "service.name": "checkout",
                "deployment.environment.name": "prod",
                "service.version": "2.1.0",
                "host.name": "web-1",
                "k8s.pod.name": "checkout-7f9",
            }
        )
    )
    made.add_span_processor(SimpleSpanProcessor(exporter))
    return made


def test_it_stores_spans_sent_by_the_opentelemetry_sdk_as_protobuf(server: RunningServer) -> None:
    tracer = provider(server).get_tracer("shop.checkout", "1.0")
    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.request.method", "POST")
        root.set_attribute("http.response.status_code", 200)
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "postgresql")
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "deadlock detected"))
    trace_id = format(root.get_span_context().trace_id, "032x")
    found = sql(
        server,
        f"""
        SELECT name, kind, status, status_message, service, environment, release, host, parent_span_id,
               span_id, attributes->>'$."otel.scope.name"', attributes->>'$.resource."k8s.pod.name"',
               attributes->'$."http.response.status_code"', events->>'$[0].name', duration_ms >= 0
        FROM spans WHERE trace_id = '{trace_id}' ORDER BY timestamp""",
    )
    root_id = format(root.get_span_context().span_id, "016x")
    assert found == [
        (
            "POST /checkout",
            "server",
            "unset",
            None,
            "checkout",
            "prod",
            "2.1.0",
            "web-1",
            None,
            root_id,
            "shop.checkout",
            "checkout-7f9",
            "200",
            None,
            True,
        ),
        (
            "SELECT orders",
            "client",
            "error",
            "deadlock detected",
            "checkout",
            "prod",
            "2.1.0",
            "web-1",
            root_id,
            format(child.get_span_context().span_id, "016x"),
            "shop.checkout",
            "checkout-7f9",
            None,
            "retry",
            True,
        ),
    ]


def test_it_takes_the_key_as_x_opswatch_key_and_refuses_a_wrong_one(server: RunningServer) -> None:
    tracer = provider(server, **{"x-opswatch-key": server.key}).get_tracer("t")
    with tracer.start_as_current_span("job"):
        pass
    assert sql(server, "SELECT name FROM spans") == [("job",)]
    answer = httpx.post(
        f"{server.url}/api/{server.project_id}/otlp/v1/traces",
        content=b"",
        headers={"x-opswatch-key": "wrong", "content-type": "application/x-protobuf"},
    )
    assert answer.status_code == 401


def json_span(span_id: str, **fields: Any) -> dict[str, Any]:
    start = time.time_ns() - 5_000_000
    span = {
        "traceId": TRACE,
        "spanId": span_id,
        "name": "GET /users/{id}",
        "kind": 2,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 2_500_000),
        "attributes": [
            {"key": "http.route", "value": {"stringValue": "/users/{id}"}},
            {"key": "retries", "value": {"intValue": "3"}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
        ],
        "status": {"code": 1},
    }
    span.update(fields)
    return span


def otlp_json(*spans: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": "users"}},
                            {"key": "deployment.environment", "value": {"stringValue": "staging"}},
                        ]
                    },
                    "scopeSpans": [{"scope": {"name": "manual"}, "spans": list(spans)}],
                }
            ]
        }
    )


def post(server: RunningServer, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/{server.project_id}/otlp/v1/traces",
        content=body,
        headers={"content-type": content_type, "authorization": f"Bearer {server.key}", **headers},
    )


def test_it_reads_otlp_json_with_hex_ids_and_gzip(server: RunningServer) -> None:
    answer = post(
        server,
        gzip.compress(otlp_json(json_span("eee19b7ec3c1b174"))),
        "application/json",
        **{"content-encoding": "gzip"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {}
    found = sql(
        server,
        """SELECT trace_id, span_id, kind, status, service, environment, duration_ms,
        attributes->'$.retries', attributes->'$.tags' FROM spans""",
    )
    assert found == [(TRACE, "eee19b7ec3c1b174", "server", "ok", "users", "staging", 2.5, "3", '["a"]')]


def test_it_answers_partial_success_for_the_spans_it_cannot_store(server: RunningServer) -> None:
    good = json_span("eee19b7ec3c1b174")
    bad_id = json_span("xyz")
    backwards = json_span("1111111111111111", endTimeUnixNano="1")
    answer = post(server, otlp_json(good, bad_id, backwards), "application/json")
    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "span_id must be 16 hex digits" in partial["errorMessage"]
    assert "ends before it starts" in partial["errorMessage"]
    assert sql(server, "SELECT span_id FROM spans") == [("eee19b7ec3c1b174",)]
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'opswatch_spans_rejected_total{reason="invalid_span",source="otlp"} 2' in metrics
    assert 'opswatch_spans_accepted_total{source="otlp"} 1' in metrics


def test_it_answers_partial_success_as_protobuf_to_a_protobuf_request(server: RunningServer) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    now = time.time_ns()
    spans = [
        Span(
            trace_id=bytes.fromhex(TRACE),
            span_id=bytes(8),
            name="zero id",
            start_time_unix_nano=now,
            end_time_unix_nano=now,
        ),
        Span(
            trace_id=bytes.fromhex(TRACE),
            span_id=bytes.fromhex("eee19b7ec3c1b174"),
            name="ok",
            start_time_unix_nano=now,
            end_time_unix_nano=now + 1000,
        ),
    ]
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    answer = post(server, request.SerializeToString(), "application/x-protobuf")
    assert answer.status_code == 200
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    assert "not all zero" in response.partial_success.error_message
    assert sql(server, "SELECT name, kind, duration_ms FROM spans") == [("ok", "internal", 0.001)]


def test_a_retried_export_stores_each_span_once(server: RunningServer) -> None:
    body = otlp_json(json_span("eee19b7ec3c1b174"), json_span("1111111111111111"))
    assert post(server, body, "application/json").status_code == 200
    assert post(server, body, "application/json").status_code == 200
    assert sql(server, "SELECT count(*) FROM spans") == [(2,)]


def test_it_refuses_what_it_cannot_read_with_the_reason(server: RunningServer) -> None:
    assert post(server, b"\xff\xff\xff", "application/x-protobuf").status_code == 400
    not_json = post(server, b"{", "application/json")
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["message"]
    text = post(server, b"x", "text/plain")
    assert text.status_code == 415
    status = status_pb2.Status()
    status.ParseFromString(text.content)  # a text/plain request is answered in protobuf, OTLP's default
    assert "application/x-protobuf" in status.message


def test_it_takes_the_most_spans_a_request_may_hold_and_refuses_one_more(server: RunningServer) -> None:
    most = limits.MAX_SPANS_PER_REQUEST
    spans = [json_span(f"{i + 1:016x}") for i in range(most + 1)]
    over = post(server, otlp_json(*spans), "application/json")
    assert over.status_code == 413
    assert f"more than {most:,} spans" in over.json()["message"]
    assert post(server, otlp_json(*spans[:most]), "application/json").status_code == 200
    assert sql(server, "SELECT count(*) FROM spans") == [(most,)]


def test_it_refuses_a_span_name_over_the_limit_and_takes_one_at_it(server: RunningServer) -> None:
    at = json_span("eee19b7ec3c1b174", name="n" * limits.MAX_SPAN_NAME_CHARS)
    over = json_span("1111111111111111", name="n" * (limits.MAX_SPAN_NAME_CHARS + 1))
    answer = post(server, otlp_json(at, over), "application/json")
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "over the limit of 2,000" in answer.json()["partialSuccess"]["errorMessage"]
    assert sql(server, "SELECT span_id, length(name) FROM spans") == [("eee19b7ec3c1b174", 2000)]
