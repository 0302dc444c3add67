"""OTLP/HTTP logs: the real OpenTelemetry SDK's log exporter (protobuf), a record emitted inside an
OTel span, into ``logs`` joined with ``spans``; OTLP/JSON as the spec writes it, with
a retried export stored once and a bad record counted in partial success."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from opswatch.server.query import run_query
from opswatch.server.testing import RunningServer, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        yield running


def sql(server: RunningServer, text: str) -> list[tuple[Any, ...]]:
    return run_query(server.ctx.store, text).rows


def test_logs_from_the_opentelemetry_sdk_join_their_spans(server: RunningServer) -> None:
    base = f"{server.url}/api/{server.project_id}/otlp"
    headers = {"authorization": f"Bearer {server.key}"}
    resource = Resource.create({"service.name": "checkout", "deployment.environment.name": "prod"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=headers))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs", headers=headers))
    )
    log = logger_provider.get_logger("checkout.payments")
    try:
        with tracer_provider.get_tracer("checkout").start_as_current_span("POST /checkout") as root:
            log.emit(LogRecord(severity_number=SeverityNumber.WARN, severity_text="WARN", body="card declined",
                               attributes={"order_id": 42}))  # fmt: skip
    finally:
        logger_provider.shutdown()
        tracer_provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    found = sql(
        server,
        f"""SELECT l.message, l.level, l.service, l.environment, l.logger, l.order_id,
        s.name FROM logs l JOIN spans s USING (trace_id) WHERE l.trace_id = '{trace_id}'""",
    )
    assert found == [("card declined", "warn", "checkout", "prod", "checkout.payments", 42, "POST /checkout")]


def test_otlp_json_logs_are_stored_once_and_a_bad_record_is_counted(server: RunningServer) -> None:
    now = time.time_ns()
    body = orjson.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "users"}}]},
        "scopeLogs": [{"scope": {"name": "users.api"}, "logRecords": [
            {"timeUnixNano": str(now), "severityNumber": 17, "body": {"stringValue": "lookup failed"},
             "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
             "attributes": [{"key": "user.id", "value": {"intValue": "7"}}]},
            {"timeUnixNano": "yesterday", "body": {"stringValue": "bad time"}},
        ]}]}]})  # fmt: skip
    post = lambda: httpx.post(  # noqa: E731
        f"{server.url}/api/{server.project_id}/otlp/v1/logs", content=body,
        headers={"content-type": "application/json", "x-opswatch-key": server.key},
    )  # fmt: skip
    first = post()
    assert first.status_code == 200
    assert first.json()["partialSuccess"]["rejectedLogRecords"] == "1"
    assert "timeUnixNano must be a whole number" in first.json()["partialSuccess"]["errorMessage"]
    assert post().status_code == 200
    found = sql(
        server,
        """SELECT message, level, kind, service, logger, trace_id, span_id, attributes->>'$."user.id"'
        FROM logs WHERE source = 'otlp'""",
    )
    assert found == [("lookup failed", "error", "error", "users", "users.api", "5b8efff798038103d269b633813fc60c",
                      "eee19b7ec3c1b174", "7")]  # fmt: skip


def test_a_log_record_keeps_its_millisecond_exactly(server: RunningServer) -> None:
    # 1764787200.059 s is 1764787200.0589999 as a float: dividing nanoseconds by 1e9 stored .058
    nanos = [1_764_787_200_059_000_000 + step * 1_000_000 for step in range(200)]
    body = orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": str(at), "body": {"stringValue": f"at {at}"}} for at in nanos
    ]}]}]})  # fmt: skip
    answer = httpx.post(f"{server.url}/api/{server.project_id}/otlp/v1/logs", content=body,
                        headers={"content-type": "application/json", "x-opswatch-key": server.key})  # fmt: skip
    assert answer.status_code == 200, answer.text
    stored = sql(server, "SELECT message, strftime(timestamp, '%S.%g') FROM logs WHERE source = 'otlp'")
    assert len(stored) == len(nanos)
    for message, second in stored:
        at = int(message.removeprefix("at "))
        assert second == f"{at // 1_000_000_000 % 60:02d}.{at // 1_000_000 % 1000:03d}", message
