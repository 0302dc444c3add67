"""Server time to build the waterfall page of a 5,000-span trace (issue 13's target: under 300 ms).

A real server on 127.0.0.1 with a fresh DuckDB store takes one trace of ``--spans`` spans (default 5,000:
a tree four wide, every 50th span an error, two attributes each) and ``--logs`` log records, both sent as
OTLP/JSON the way an OpenTelemetry exporter sends them. Then, ``--repeat`` times each:

- **build**: ``opswatch.server.ui.traces.trace_detail`` (the two queries through the checked query layer,
  and the one-pass layout) plus rendering ``trace.html``: the server-side work of the page;
- **layout**: the one-pass layout alone (``waterfall``), on the rows read once;
- **http**: ``GET /traces/<trace_id>`` with the admin token, whole answer read (server work plus HTTP).

It prints the medians and the best in ms, and the page's size. Numbers depend on the machine and on
what else runs on it; nothing here is asserted in tests.

Run: ``.venv/bin/python benchmarks/bench_trace_page.py [--spans 5000] [--logs 200] [--repeat 15]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from opswatch.server.query import run_query
from opswatch.server.testing import RunningServer, running_server
from opswatch.server.ui import traces
from opswatch.server.ui.render import render

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
MS = 1_000_000


def otlp_spans(count: int, base: int) -> bytes:
    spans = []
    for i in range(count):
        span: dict[str, Any] = {
            "traceId": TRACE, "spanId": f"{i + 1:016x}", "name": f"op {i % 40}", "kind": 3 if i else 2,
            "startTimeUnixNano": str(base + i * 50_000), "endTimeUnixNano": str(base + 900 * MS - i * 40_000),
            "attributes": [{"key": "db.system", "value": {"stringValue": "postgresql"}},
                           {"key": "server.address", "value": {"stringValue": f"db-{i % 3}"}}],
            "status": {"code": 2, "message": "timeout"} if i % 50 == 49 else {"code": 1},
        }  # fmt: skip
        if i:
            span["parentSpanId"] = f"{(i - 1) // 4 + 1:016x}"
        spans.append(span)
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "bench"}}]}
    return orjson.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]})


def otlp_logs(count: int, base: int) -> bytes:
    records = [
        {"timeUnixNano": str(base + i * 4 * MS), "severityNumber": 9, "body": {"stringValue": f"step {i}"},
         "traceId": TRACE, "spanId": f"{i + 1:016x}"}
        for i in range(count)
    ]  # fmt: skip
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "bench"}}]}
    return orjson.dumps({"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": records}]}]})


def send(server: RunningServer, signal: str, body: bytes) -> None:
    answer = httpx.post(
        f"{server.url}/api/{server.project_id}/otlp/v1/{signal}", content=body, timeout=120,
        headers={"content-type": "application/json", "authorization": f"Bearer {server.key}"},
    )  # fmt: skip
    answer.raise_for_status()


def timed(run: Callable[[], Any], repeat: int) -> list[float]:
    taken = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        taken.append((time.perf_counter() - started) * 1000)
    return taken


def report(label: str, taken: list[float]) -> None:
    print(f"{label:<8} median {statistics.median(taken):7.1f} ms   best {min(taken):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=5000)
    parser.add_argument("--logs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_server(tmp) as server:
        base = time.time_ns() - 60_000 * MS
        send(server, "traces", otlp_spans(args.spans, base))
        send(server, "logs", otlp_logs(args.logs, base))
        stored = run_query(server.ctx.store, f"SELECT count(*) FROM spans WHERE trace_id = '{TRACE}'").rows[0][0]
        print(f"trace of {stored} spans and {args.logs} log records")

        def build() -> str:
            trace = traces.trace_detail(server.ctx, TRACE)
            return render("trace.html", {"viewer": None, "active": "Traces", "nav": (), "trace": trace})

        html = build()
        spans = run_query(server.ctx.store, traces._SPAN_SQL.format(trace_id=TRACE, rows=traces.MAX_TRACE_SPANS),
                          max_rows=traces.MAX_TRACE_SPANS)  # fmt: skip
        rows = [dict(zip(spans.columns, row, strict=True)) for row in spans.rows]
        report("build", timed(build, args.repeat))
        report("layout", timed(lambda: traces.waterfall(TRACE, rows, []), args.repeat))
        with httpx.Client(timeout=60, headers=server.admin_headers) as http:
            url = f"{server.url}/traces/{TRACE}"
            assert http.get(url).status_code == 200
            report("http", timed(lambda: http.get(url).raise_for_status(), args.repeat))
        print(f"page: {len(html) / 1024:.0f} KiB of HTML (target for build: < 300 ms)")


if __name__ == "__main__":
    main()
