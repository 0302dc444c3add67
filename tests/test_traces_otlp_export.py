"""OTLP export from the SDK (``OPSWATCH_OTLP_ENDPOINT``): opswatch's spans, redacted, as OTLP/HTTP
protobuf to a real collector on 127.0.0.1 that decodes them with ``opentelemetry-proto``, and to the
opswatch server's own OTLP ingest end to end; failures counted in ``opswatch.stats()``, never raised."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

import opswatch
from opswatch.server.query import run_query
from opswatch.server.testing import running_server
from otlp_collector import Collector

SERVER, CLIENT, INTERNAL = 2, 3, 1  # OTLP's SpanKind numbers
ERROR = 2  # OTLP's STATUS_CODE_ERROR


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    opswatch.shutdown(2)
    running.close()


def start(collector: Collector, tmp_path: Path, **settings: Any) -> None:
    opswatch.init(otlp_endpoint=collector.endpoint, service="donations-api", environment="production",
                  release="2.4.1", console=False, capture_stdlib=False, spool_dir=str(tmp_path / "spool"),
                  **settings)  # fmt: skip


def test_it_exports_spans_as_otlp_protobuf_with_the_resource_and_the_headers(
    collector: Collector, tmp_path: Path
) -> None:
    start(collector, tmp_path, otlp_headers="authorization=Bearer%20k-123, x-team = donations")
    with opswatch.span("POST /donations", kind="server", attributes={"http.request.method": "POST"}) as root:
        opswatch.track_query("donations.insert", lambda: None)
        with opswatch.span("charge", amount=25, ok=True, ratio=0.5, tags=["a", 1], card={"brand": "visa"}):
            pass
        try:
            with opswatch.span("refund"):
                raise LookupError("no such donation")
        except LookupError:
            pass
    assert opswatch.flush(10)
    spans = {span["name"]: span for span in collector.spans}
    assert set(spans) == {"POST /donations", "donations.insert", "charge", "refund"}
    assert {span["trace_id"] for span in spans.values()} == {root.trace_id}
    top = spans["POST /donations"]
    assert (top["span_id"], top["parent_span_id"], top["kind"]) == (root.span_id, None, SERVER)
    assert top["attributes"] == {"http.request.method": "POST"}
    assert top["end"] >= top["start"] > 0
    assert spans["donations.insert"]["kind"] == CLIENT
    assert spans["donations.insert"]["attributes"] == {
        "opswatch.perf.kind": "db", "db.query.summary": "donations.insert"
    }
    charge = spans["charge"]
    assert (charge["parent_span_id"], charge["kind"]) == (root.span_id, INTERNAL)
    assert charge["attributes"] == {"amount": 25, "ok": True, "ratio": 0.5, "tags": ["a", 1],
                                    "card": {"brand": "visa"}}  # fmt: skip
    assert spans["refund"]["status"] == (ERROR, "LookupError: no such donation")
    assert top["resource"]["service.name"] == "donations-api"
    assert top["resource"]["deployment.environment.name"] == "production"
    assert top["resource"]["service.version"] == "2.4.1"
    assert top["resource"]["telemetry.sdk.name"] == "opswatch"
    assert isinstance(top["resource"]["process.pid"], int)
    assert top["scope"] == ("opswatch", opswatch.__version__)
    headers = collector.requests[0]["headers"]
    assert headers["authorization"] == "Bearer k-123"
    assert headers["x-team"] == "donations"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["content-encoding"] == "gzip"
    assert "x-opswatch-client-report" not in headers


def test_it_exports_only_spans_of_sampled_traces(collector: Collector, tmp_path: Path) -> None:
    start(collector, tmp_path, traces_sample_rate=0.0)
    opswatch.logger.error("a log record is not a span")
    with opswatch.span("not sampled"):
        opswatch.track_query("donations.find", lambda: None)
    with opswatch.context(trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7"):
        pass
    opswatch.init(otlp_endpoint=collector.endpoint, console=False, capture_stdlib=False,
                  spool_dir=str(tmp_path / "spool"))  # fmt: skip
    with opswatch.span("sampled"):
        opswatch.logger.info("inside")
    assert opswatch.flush(10)
    assert [span["name"] for span in collector.spans] == ["sampled"]


def test_a_collector_that_refuses_or_is_down_is_counted_and_never_raises(
    collector: Collector, tmp_path: Path
) -> None:
    start(collector, tmp_path)
    collector.answers.append((400, b"bad request", {"content-type": "text/plain"}))
    with opswatch.span("refused"):
        pass
    assert opswatch.flush(10) is False
    otlp = opswatch.stats()["sinks"]["otlp"]
    assert (otlp["refused"], otlp["last_status"]) == (1, 400)
    assert "bad request" in otlp["last_error"]

    collector.answers.append((503, b"", {"retry-after": "0"}))
    with opswatch.span("retried"):
        pass
    assert opswatch.flush(15)
    assert [span["name"] for span in collector.spans] == ["retried"]
    assert opswatch.stats()["sinks"]["otlp"]["send_errors"] == 2

    port = collector.endpoint.rsplit(":", 1)[1]
    collector.close()
    opswatch.init(otlp_endpoint=f"http://127.0.0.1:{port}", console=False, capture_stdlib=False,
                  spool_dir=str(tmp_path / "spool2"))  # fmt: skip
    with opswatch.span("while the collector is down"):
        pass
    assert opswatch.flush(1) is False
    otlp = opswatch.stats()["sinks"]["otlp"]
    assert otlp["send_errors"] >= 1 and otlp["backlog_records"] == 1


def test_spans_a_collector_rejects_in_partial_success_are_counted(collector: Collector, tmp_path: Path) -> None:
    start(collector, tmp_path)
    answer = ExportTraceServiceResponse()
    answer.partial_success.rejected_spans = 1
    answer.partial_success.error_message = "span name too long"
    collector.answers.append((200, answer.SerializeToString(), {"content-type": "application/x-protobuf"}))
    with opswatch.span("one"), opswatch.span("two"):
        pass
    assert opswatch.flush(10) is False
    otlp = opswatch.stats()["sinks"]["otlp"]
    assert (otlp["accepted"], otlp["rejected"]) == (1, 1)


def test_nothing_unredacted_reaches_the_collector(collector: Collector, tmp_path: Path) -> None:
    start(collector, tmp_path)
    bodies: list[bytes] = []
    original = collector.take

    def keep(headers: dict[str, str], body: bytes) -> None:
        bodies.append(gzip.decompress(body))
        original(headers, body)

    collector.take = keep  # type: ignore[method-assign]
    try:
        with opswatch.span("notify jane.doe@example.com", password="hunter2",
                           attributes={"payment": {"card": "4111 1111 1111 1111"}}):  # fmt: skip
            raise PermissionError("token sk_live_abcdefghijklmnop1234 refused")
    except PermissionError:
        pass
    assert opswatch.flush(10)
    (body,) = bodies
    for secret in (b"jane.doe@example.com", b"hunter2", b"4111 1111 1111 1111", b"sk_live_abcdefghijklmnop1234"):
        assert secret not in body
    (span,) = collector.spans
    assert span["attributes"]["password"] == "[REDACTED]"
    assert span["status"][0] == ERROR and "[REDACTED]" in span["status"][1]


def test_it_exports_into_the_opswatch_servers_own_otlp_ingest(tmp_path: Path) -> None:
    with running_server(tmp_path / "server") as server:
        opswatch.init(otlp_endpoint=f"{server.url}/api/{server.project_id}/otlp",
                      otlp_headers={"x-opswatch-key": server.key}, service="donations-worker",
                      environment="staging", console=False, capture_stdlib=False,
                      spool_dir=str(tmp_path / "spool"))  # fmt: skip
        with opswatch.span("nightly import", kind="consumer", source="csv") as root, opswatch.span("parse rows"):
            pass
        assert opswatch.flush(10)
        rows = run_query(
            server.ctx.store,
            "SELECT name, kind, parent_span_id, service, environment, attributes->>'source' FROM spans "
            f"WHERE trace_id = '{root.trace_id}' ORDER BY name",
        ).rows
        opswatch.shutdown(2)
    assert rows == [
        ("nightly import", "consumer", None, "donations-worker", "staging", "csv"),
        ("parse rows", "internal", root.span_id, "donations-worker", "staging", None),
    ]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OPSWATCH_OTLP_ENDPOINT", "grpc://collector:4317", r"otlp_endpoint \(from OPSWATCH_OTLP_ENDPOINT\).*http\(s\) URL"),
        ("OPSWATCH_OTLP_HEADERS", "authorization", r"otlp_headers \(from OPSWATCH_OTLP_HEADERS\).*item 1 has no '='"),
        ("OPSWATCH_OTLP_HEADERS", "bad name=x", r"OPSWATCH_OTLP_HEADERS.*'bad name' is not a valid header name"),
        ("OPSWATCH_OTLP_HEADERS", "x-key=a%0Db", r"OPSWATCH_OTLP_HEADERS.*header 'x-key' must be text on one line"),
        ("OPSWATCH_TRACES_TAIL_SAMPLING", "sometimes", r"traces_tail_sampling \(from OPSWATCH_TRACES_TAIL_SAMPLING\)"),
    ],
)
def test_bad_export_settings_fail_at_init_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(opswatch.ConfigError, match=message) as caught:
        opswatch.init(console=False, capture_stdlib=False)
    assert "a%0Db" not in str(caught.value)


def test_header_values_never_appear_in_the_error() -> None:
    with pytest.raises(opswatch.ConfigError, match="otlp_headers") as caught:
        opswatch.init(console=False, otlp_headers={"authorization": "Bearer s3cr3t\n"})
    assert "s3cr3t" not in str(caught.value)


def test_without_opentelemetry_proto_the_endpoint_fails_at_init_naming_the_setting() -> None:
    code = (
        "import sys; sys.modules['opentelemetry.proto'] = None\n"
        "import opswatch\n"
        "try:\n"
        "    opswatch.init(console=False, otlp_endpoint='http://127.0.0.1:4318')\n"
        "except opswatch.ConfigError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "otlp_endpoint" in done.stdout and "opswatch[otlp]" in done.stdout, done.stderr


def test_attribute_values_nested_past_the_depth_limit_become_text() -> None:
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    from opswatch._limits import MAX_DEPTH
    from opswatch.tracing._otlp import span_line
    from otlp_collector import plain

    def nested(levels: int, leaf: str = "leaf") -> Any:
        value: Any = leaf
        for _ in range(levels):
            value = [value]
        return value

    record = {"kind": "span", "trace_id": "ab" * 16, "span_id": "cd" * 8, "name": "deep",
              "start_unix_nano": 1, "duration_ms": 0.0,
              "attributes": {"at": nested(MAX_DEPTH), "past": nested(MAX_DEPTH + 1), "big": 2**64}}  # fmt: skip
    line = span_line(record)
    assert line is not None
    span = Span.FromString(line)
    values = {kv.key: plain(kv.value) for kv in span.attributes}
    assert values["at"] == nested(MAX_DEPTH)
    assert values["past"] == nested(MAX_DEPTH, str(["leaf"]))  # the list at the limit, as text
    assert values["big"] == str(2**64)


def test_a_stored_batch_too_large_for_the_collector_is_split_and_sent_in_halves(
    collector: Collector, tmp_path: Path
) -> None:
    start(collector, tmp_path)
    collector.answers += [(503, b"", {"retry-after": "0"}), (413, b"", {})]  # then the halves are taken
    with opswatch.span("first"), opswatch.span("second"):
        pass
    assert opswatch.flush(15)
    assert sorted(span["name"] for span in collector.spans) == ["first", "second"]
    assert [len(request["request"].resource_spans[0].scope_spans[0].spans) for request in collector.requests] == [1, 1]
    assert opswatch.stats()["sinks"]["otlp"]["retries"] == 1
