"""OTLP trace ingest: spans per second acknowledged durably, from a separate client process, redaction on.

Starts ``opswatch serve`` (a real server process, a fresh data directory, the default settings, so
redaction on arrival is on), then a client process that prepares everything first and then sends as
fast as the server answers over ``--connections`` keep-alive connections. Two clients, one after the
other, each against a fresh server:

* **httpx, pre-encoded**: ``ExportTraceServiceRequest`` protobuf bodies of 512 spans (the batch span
  processor's export size) built with ``opentelemetry-proto`` before the clock starts, gzipped, posted
  with httpx. Spans are counted from the answers: a 200's spans minus its
  ``partial_success.rejected_spans``.
* **OTel exporter**: spans made with the OpenTelemetry SDK (kept in memory until the clock starts), then
  exported 512 at a time by the real ``opentelemetry-exporter-otlp-proto-http`` ``OTLPSpanExporter``
  (gzip), one exporter per connection; the exporter encodes on the client's clock, as it does in an
  application. Spans are counted when ``export`` answers ``SUCCESS``.

Each row also gives the CPU time the server process and the client process spent per span stored, and
the load average is printed before and after: on a shared machine the rate says what the run got, the
CPU per span what the ingest path costs. A 200 answer means the spans are durable (the server answers after the store's commit). At the end the
server's ``opswatch_spans_accepted_total`` is read from ``/metrics`` and printed next to the client's
count, so a lost span would show.

The spans are those of a web request: one server span (``http.request.method``, ``http.route``,
``url.path``, ``http.response.status_code``, ``user_agent.original``, ``client.address``) with children
for queries (``db.system``, ``db.operation.name``, ``db.query.text``) and outgoing calls (``url.full``,
``server.address``); resource ``service.name``, ``service.version``, ``deployment.environment.name``,
``host.name`` and the SDK's ``telemetry.sdk.*``. About 1 in 100 spans is an error with an event.

Target on this 2-core machine (issue 13): 20,000 spans/s. Run:
``.venv/bin/python benchmarks/bench_otlp_ingest.py [--spans 200000] [--connections 8] [--only httpx|otel]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench_ingest import cpu_seconds, start_client, start_server  # type: ignore[import-not-found]

TARGET = 20_000
BATCH = 512
#: Spans per trace: the server span, then queries and outgoing calls under it.
TRACE_SPANS = 8
MS = 1_000_000

# -- what the client sends ------------------------------------------------------------------------------


def _trace_spans(trace: int, base_ns: int) -> list[dict[str, Any]]:
    """One request's spans as plain values (name, kind, parent, times, attributes, status)."""
    route = ("/donations/{id}", "/churches/{id}/members", "/checkout", "/users/{id}")[trace % 4]
    start = base_ns + trace * 3 * MS
    spans: list[dict[str, Any]] = [
        {
            "name": f"GET {route}", "kind": "server", "parent": None, "start": start, "end": start + 40 * MS,
            "attributes": {
                "http.request.method": "GET", "http.route": route, "url.path": route.replace("{id}", str(trace)),
                "http.response.status_code": 200, "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
                "client.address": f"10.0.{trace % 256}.{trace % 200}",
            },
        }
    ]  # fmt: skip
    for child in range(1, TRACE_SPANS):
        at = start + child * 4 * MS
        if child % 3:
            table = ("donations", "members", "churches")[child % 3]
            attributes: dict[str, Any] = {
                "db.system": "postgresql", "db.operation.name": "SELECT", "db.collection.name": table,
                "db.query.text": f"SELECT * FROM {table} WHERE id = $1 AND church_id = $2", "server.address": "db-1",
            }  # fmt: skip
            name = f"SELECT {table}"
        else:
            attributes = {
                "http.request.method": "POST", "url.full": "https://api.stripe.com/v1/charges",
                "server.address": "api.stripe.com", "http.response.status_code": 200,
            }  # fmt: skip
            name = "POST api.stripe.com"
        spans.append({"name": name, "kind": "client", "parent": 0, "start": at, "end": at + 3 * MS,
                      "attributes": attributes})  # fmt: skip
    if trace % 12 == 11:
        spans[-1]["error"] = "connection reset by peer"
    return spans


RESOURCE = {
    "service.name": "donations-api",
    "service.version": "1.4.2",
    "deployment.environment.name": "production",
    "host.name": "web-1",
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.45.2",
}


def pre_encoded_bodies(count: int) -> list[tuple[bytes, int]]:
    """gzipped ``ExportTraceServiceRequest`` bodies of ``BATCH`` spans, each with its span count."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    def pairs(values: dict[str, Any]) -> list[KeyValue]:
        out = []
        for key, value in values.items():
            any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
            out.append(KeyValue(key=key, value=any_value))
        return out

    kinds = {"server": Span.SPAN_KIND_SERVER, "client": Span.SPAN_KIND_CLIENT}
    base = time.time_ns() - 600_000 * MS
    bodies: list[tuple[bytes, int]] = []
    made = trace = 0
    while made < count:
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(pairs(RESOURCE))
        scope = resource_spans.scope_spans.add()
        scope.scope.name = "opentelemetry.instrumentation.asgi"
        scope.scope.version = "0.66b2"
        in_batch = 0
        while in_batch < BATCH and made < count:
            trace_id = os.urandom(16)
            ids = [os.urandom(8) for _ in range(TRACE_SPANS)]
            for index, plain in enumerate(_trace_spans(trace, base)):
                span = scope.spans.add()
                span.trace_id, span.span_id, span.name = trace_id, ids[index], plain["name"]
                if plain["parent"] is not None:
                    span.parent_span_id = ids[plain["parent"]]
                span.kind = kinds[plain["kind"]]
                span.start_time_unix_nano, span.end_time_unix_nano = plain["start"], plain["end"]
                span.attributes.extend(pairs(plain["attributes"]))
                if "error" in plain:
                    span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=plain["error"]))
                    event = span.events.add()
                    event.name, event.time_unix_nano = "exception", plain["end"]
                    event.attributes.extend(pairs({"exception.type": "ConnectionResetError",
                                                   "exception.message": plain["error"]}))  # fmt: skip
                in_batch += 1
            made += TRACE_SPANS
            trace += 1
        bodies.append((gzip.compress(request.SerializeToString(), 6), in_batch))
    return bodies


def sdk_spans(count: int) -> list[Any]:
    """``count`` finished spans (``ReadableSpan``) made with the OpenTelemetry SDK, kept in memory."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("opentelemetry.instrumentation.asgi", "0.66b2")
    kinds = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT}
    base = time.time_ns() - 600_000 * MS
    trace = 0
    while trace * TRACE_SPANS < count:
        plain = _trace_spans(trace, base)
        root = tracer.start_span(plain[0]["name"], kind=kinds["server"], attributes=plain[0]["attributes"],
                                 start_time=plain[0]["start"])  # fmt: skip
        context = set_span_in_context(root)
        for child in plain[1:]:
            span = tracer.start_span(child["name"], context=context, kind=kinds[child["kind"]],
                                     attributes=child["attributes"], start_time=child["start"])  # fmt: skip
            if "error" in child:
                span.add_event("exception", {"exception.type": "ConnectionResetError",
                                             "exception.message": child["error"]}, child["end"])  # fmt: skip
                span.set_status(Status(StatusCode.ERROR, child["error"]))
            span.end(child["end"])
        root.end(plain[0]["end"])
        trace += 1
    return list(memory.get_finished_spans())[:count]


def _rejected(answer: bytes) -> int:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    response.ParseFromString(answer)
    return int(response.partial_success.rejected_spans)


def client_main(spec: dict[str, Any]) -> None:
    """The client process: prepare everything, say ready, wait for go, send, print the result."""
    url = f"{spec['url']}/api/1/otlp/v1/traces"
    auth = {"authorization": f"Bearer {spec['key']}"}
    lock = threading.Lock()
    state = {"next": 0, "stored": 0, "sent": 0, "failed": 0, "retried": 0}
    send: Callable[[int, Any], None]
    if spec["client"] == "httpx":
        bodies = pre_encoded_bodies(spec["spans"])
        jobs: list[Any] = bodies
        headers = {**auth, "content-type": "application/x-protobuf", "content-encoding": "gzip"}
        clients = [httpx.Client(headers=headers, timeout=120) for _ in range(spec["connections"])]

        def send(worker: int, job: Any) -> None:
            body, spans = job
            while True:
                answer = clients[worker].post(url, content=body)
                if answer.status_code in (429, 503):
                    with lock:
                        state["retried"] += 1
                    time.sleep(float(answer.headers.get("retry-after", "1")))
                    continue
                with lock:
                    state["sent"] += spans
                    if answer.status_code == 200:
                        state["stored"] += spans - _rejected(answer.content)
                    else:
                        state["failed"] += 1
                return

    else:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult

        spans = sdk_spans(spec["spans"])
        jobs = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]
        exporters = [
            OTLPSpanExporter(endpoint=url, headers=auth, compression=Compression.Gzip, timeout=120)
            for _ in range(spec["connections"])
        ]

        def send(worker: int, job: Any) -> None:
            result = exporters[worker].export(job)
            with lock:
                state["sent"] += len(job)
                if result is SpanExportResult.SUCCESS:
                    state["stored"] += len(job)
                else:
                    state["failed"] += 1

    print("ready", flush=True)
    sys.stdin.readline()

    def worker(number: int) -> None:
        while True:
            with lock:
                index = state["next"]
                state["next"] += 1
            if index >= len(jobs):
                return
            send(number, jobs[index])

    started = time.perf_counter()
    cpu_started = time.process_time()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(spec["connections"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(json.dumps({**state, "elapsed": elapsed, "client_cpu": cpu, "requests": len(jobs)}), flush=True)


# -- the harness ----------------------------------------------------------------------------------------


def accepted_on_server(url: str) -> int:
    """``opswatch_spans_accepted_total`` summed over its sources, from ``/metrics``."""
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("opswatch_spans_accepted_total"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def run(client: str, spans: int, connections: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server, url, key = start_server(Path(tmp) / "data")
        try:
            spec = {"client": client, "spans": spans, "connections": connections, "key": key, "url": url}
            process = start_client(__file__, spec)
            assert process.stdin is not None and process.stdout is not None
            cpu_before = cpu_seconds(server.pid)
            process.stdin.write("go\n")
            process.stdin.flush()
            result: dict[str, Any] = json.loads(process.stdout.readline())
            result["server_cpu"] = cpu_seconds(server.pid) - cpu_before
            result["server_accepted"] = accepted_on_server(url)
            process.wait(30)
        finally:
            server.terminate()
            server.wait(60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--spans", type=int, default=200_000, help="spans to send per client")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--only", choices=("httpx", "otel"), help="run one client only")
    args = parser.parse_args()
    if args.client:
        client_main(json.loads(args.client))
        return
    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores; other processes share them)")
    print(
        f"{'client':<28}{'spans':>9}{'seconds':>9}{'spans/s':>10}{'srv CPU µs/span':>17}"
        f"{'client CPU µs/span':>20}{'server counted':>16}{'target':>8}{'ratio':>8}"
    )
    names = {"httpx": "httpx, pre-encoded protobuf", "otel": "OTLPSpanExporter (SDK)"}
    for client in (args.only,) if args.only else ("httpx", "otel"):
        result = run(client, args.spans, args.connections)
        rate = result["stored"] / result["elapsed"]
        print(
            f"{names[client]:<28}{result['stored']:>9,}{result['elapsed']:>9.2f}{rate:>10,.0f}"
            f"{result['server_cpu'] / max(result['stored'], 1) * 1e6:>17.1f}"
            f"{result['client_cpu'] / max(result['stored'], 1) * 1e6:>20.1f}{result['server_accepted']:>16,}"
            f"{TARGET:>8,}{rate / TARGET:>7.2f}x"
            + (f"  ({result['retried']} answers were 429/503, retried)" if result["retried"] else "")
            + (f"  ({result['failed']} requests FAILED)" if result["failed"] else "")
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
