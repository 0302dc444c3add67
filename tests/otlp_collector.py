"""A real OTLP/HTTP collector on 127.0.0.1 for the SDK's export tests: it decodes each
``ExportTraceServiceRequest`` (gzip or not) with ``opentelemetry-proto`` and keeps the spans, their
resource and the request headers; ``answers`` scripts the next statuses (and bodies)."""

from __future__ import annotations

import gzip
import http.server
import threading
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def plain(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as a Python value."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [plain(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {pair.key: plain(pair.value) for pair in value.kvlist_value.values}
    return getattr(value, which)


class Collector:
    """Receives ``POST /v1/traces`` (any other path: 404) and keeps what it decoded."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.spans: list[dict[str, Any]] = []
        self.answers: list[tuple[int, bytes, dict[str, str]]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with collector.lock:
                    scripted = collector.answers.pop(0) if collector.answers else None
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                if scripted is None:
                    collector.take(headers, body)
                    status, answer = 200, ExportTraceServiceResponse().SerializeToString()
                    extra = {"content-type": "application/x-protobuf"}
                else:
                    status, answer, extra = scripted
                    if status == 200:
                        collector.take(headers, body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def take(self, headers: dict[str, str], body: bytes) -> None:
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.lock:
            self.requests.append({"headers": headers, "request": request})
            for resource_spans in request.resource_spans:
                resource = {kv.key: plain(kv.value) for kv in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append({
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex() or None,
                            "name": span.name,
                            "kind": span.kind,
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                            "attributes": {kv.key: plain(kv.value) for kv in span.attributes},
                            "status": (span.status.code, span.status.message),
                            "resource": resource,
                            "scope": (scope_spans.scope.name, scope_spans.scope.version),
                        })

    def close(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
