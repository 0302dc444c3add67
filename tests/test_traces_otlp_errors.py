"""OTLP/HTTP failures as the specification says: a ``google.rpc.Status`` body in the request's encoding
(protobuf or JSON) for every 4xx/5xx, and 429 with ``Retry-After`` (plus a ``RetryInfo`` detail) when the
server is full, which the real ``opentelemetry-exporter-otlp-proto-http`` exporter waits out and retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opswatch.server.query import run_query
from opswatch.server.testing import RunningServer, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path, max_pending_events=1) as running:
        yield running


JSON_SPAN = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
    "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "GET /",
    "startTimeUnixNano": str(time.time_ns() - 10**9), "endTimeUnixNano": str(time.time_ns())}]}]}]})  # fmt: skip


def traces_url(server: RunningServer) -> str:
    return f"{server.url}/api/{server.project_id}/otlp/v1/traces"


def post(server: RunningServer, body: bytes, content_type: str, key: str | None = None) -> httpx.Response:
    return httpx.post(traces_url(server), content=body, timeout=30,
                      headers={"content-type": content_type, "authorization": f"Bearer {key or server.key}"})  # fmt: skip


def rpc_status(answer: httpx.Response) -> status_pb2.Status:
    assert answer.headers["content-type"] == "application/x-protobuf"
    status = status_pb2.Status()
    status.ParseFromString(answer.content)
    return status


def finished_spans(count: int) -> list[object]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("checkout")
    for number in range(count):
        with tracer.start_as_current_span(f"step {number}"):
            pass
    return list(memory.get_finished_spans())


def test_an_unreadable_protobuf_request_gets_400_with_a_protobuf_status(server: RunningServer) -> None:
    answer = post(server, b"\xff\xff\xff", "application/x-protobuf")
    assert answer.status_code == 400
    status = rpc_status(answer)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert "not an ExportTraceServiceRequest" in status.message


def test_an_unreadable_json_request_gets_400_with_a_json_status(server: RunningServer) -> None:
    answer = post(server, b"{", "application/json")
    assert (answer.status_code, answer.headers["content-type"]) == (400, "application/json")
    body = answer.json()
    assert body["code"] == code_pb2.INVALID_ARGUMENT and "not valid JSON" in body["message"]


def test_a_wrong_key_gets_401_with_unauthenticated_and_the_logs_endpoint_answers_alike(
    server: RunningServer,
) -> None:
    answer = post(server, b"", "application/x-protobuf", key="wrong")
    assert (answer.status_code, rpc_status(answer).code) == (401, code_pb2.UNAUTHENTICATED)
    logs = httpx.post(f"{server.url}/api/{server.project_id}/otlp/v1/logs", content=b"[",
                      headers={"content-type": "application/json", "authorization": f"Bearer {server.key}"})  # fmt: skip
    assert (logs.status_code, logs.json()["code"]) == (400, code_pb2.INVALID_ARGUMENT)


class BlockedWriter:
    """The store's writer held busy, with a native batch waiting behind it: the pipeline is full."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.gate = threading.Event()

    def __enter__(self) -> BlockedWriter:
        writer = self.server.ctx.store._writer  # the one thread that writes: hold it
        threading.Thread(target=writer.call, args=(lambda _conn: self.gate.wait(60),), daemon=True).start()
        lines = b"\n".join(orjson.dumps({"level": "info", "message": f"m{i}"}) for i in range(3))
        threading.Thread(target=httpx.post, daemon=True, args=(f"{self.server.url}/api/{self.server.project_id}/events/",),
                         kwargs={"content": lines, "timeout": 60,
                                 "headers": {"authorization": f"Bearer {self.server.key}"}}).start()  # fmt: skip
        deadline = time.monotonic() + 30
        while self.server.ctx.pipeline.pending < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.server.ctx.pipeline.pending == 3
        return self

    def __exit__(self, *_: object) -> None:
        self.gate.set()


def test_a_full_server_answers_429_with_retry_after_and_a_retry_info_status(server: RunningServer) -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    body = encode_spans(finished_spans(1)).SerializeToString()  # type: ignore[arg-type]
    with BlockedWriter(server):
        answer = post(server, body, "application/x-protobuf")
        as_json = post(server, JSON_SPAN, "application/json")
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "1")
    status = rpc_status(answer)
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry) and retry.retry_delay.seconds == 1
    assert as_json.status_code == 429
    assert as_json.json()["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
    ]


def test_the_real_exporter_waits_out_a_429_and_its_spans_are_stored(server: RunningServer) -> None:
    spans = finished_spans(3)
    exporter = OTLPSpanExporter(
        endpoint=traces_url(server), headers={"authorization": f"Bearer {server.key}"}
    )
    with BlockedWriter(server) as blocked:
        threading.Timer(0.3, blocked.gate.set).start()  # the writer is free again before the retry
        result = exporter.export(spans)  # type: ignore[arg-type]
    assert result is SpanExportResult.SUCCESS
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'opswatch_ingest_requests_total{endpoint="otlp_traces",status="429"} 1' in metrics
    assert 'opswatch_ingest_requests_total{endpoint="otlp_traces",status="200"} 1' in metrics
    found = run_query(server.ctx.store, "SELECT name FROM spans ORDER BY name").rows
    assert found == [("step 0",), ("step 1",), ("step 2",)]


def test_a_server_whose_store_is_closed_answers_503_with_retry_after_and_unavailable(tmp_path: Path) -> None:
    with running_server(tmp_path) as running:
        running.ctx.store.close()  # as during shutdown: the store takes nothing more
        answer = post(running, JSON_SPAN, "application/json")
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "5")
    assert answer.json()["code"] == code_pb2.UNAVAILABLE
    assert answer.json()["details"][0]["retryDelay"] == "5s"
