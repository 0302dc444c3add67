"""The cost of one span (start + end, two attributes): opswatch's light spans against the OpenTelemetry
Python SDK, in one run.

Run: .venv/bin/python benchmarks/bench_tracing.py [--spans N] [--repeat R]

opswatch: ``with opswatch.span("op", a=1, b="x")`` with redaction on (the default) and a sink that
takes spans and keeps the record (what the server sink's ``write`` receives; its batching and posting
happen on its own thread). OpenTelemetry: ``tracer.start_as_current_span("op", attributes=...)`` with a
``BatchSpanProcessor`` exporting to an ``InMemorySpanExporter`` (the exporter's work is on its thread too).
Also: opswatch with no sink taking spans (the span is timed and its context set, nothing is built), and a
tracked no-op call (``track_query``): with no sink taking spans, with a sink taking spans in a sampled
trace (today's default), and in a trace not sampled (``traces_sample_rate=0``) with tail sampling on (the
span is still built and sent, marked ``"sampled": false``, as to an opswatch server) and off (nothing is
built; also as in an app without ``opentelemetry-api``, where no OTel span is looked up). Targets:
opswatch's span at most 1/3 of OpenTelemetry's; a tracked call not sampled costs no more than today's
tracked call.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import opswatch
from opswatch._runtime import STATE
from opswatch.sinks import Sink


class KeepSink(Sink):
    """Takes spans only (those of unsampled traces too, as the server sink) and keeps the last record."""

    name = "keep"
    accepts_spans = True
    accepts_unsampled_spans = True

    def __init__(self) -> None:
        super().__init__(level=10**6)  # no log records
        self.last: dict[str, Any] | None = None

    def write(self, record: dict[str, Any]) -> None:
        self.last = record


def per_span(run: Callable[[int], None], spans: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run(spans)
        best = min(best, (time.perf_counter() - started) / spans)
    return best * 1e6


def opswatch_spans(count: int) -> None:
    span = opswatch.span
    for _ in range(count):
        with span("op", a=1, b="x"):
            pass


def noop() -> None:
    pass


def tracked_calls(count: int) -> None:
    track = opswatch.track_query
    for _ in range(count):
        track("bench.noop", noop)


def tracked(count: int, repeat: int, sink: bool, otel: bool = True, **settings: Any) -> float:
    """A tracked no-op, with ``settings`` for ``init`` and (``sink``) a sink taking spans; ``otel=False``:
    as in an app without ``opentelemetry-api`` (no lookup of the current OTel span)."""
    opswatch.init(console=False, capture_stdlib=False, **settings)
    if sink:
        STATE.get().add_sink(KeepSink())
    if not otel:
        STATE.get().otel = None
    return per_span(tracked_calls, count, repeat)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    opswatch.init(console=False, capture_stdlib=False)
    bare = per_span(opswatch_spans, args.spans, args.repeat)
    runtime = STATE.get()
    sink = KeepSink()
    runtime.add_sink(sink)
    ours = per_span(opswatch_spans, args.spans, args.repeat)
    assert sink.last is not None and sink.last["kind"] == "span"

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=args.spans * 2))
    tracer = provider.get_tracer("bench")

    def otel_spans(count: int) -> None:
        start = tracer.start_as_current_span
        for _ in range(count):
            with start("op", attributes={"a": 1, "b": "x"}):
                pass
        exporter.clear()

    theirs = per_span(otel_spans, args.spans, args.repeat)
    provider.shutdown()
    untraced = tracked(args.spans, args.repeat, sink=False)
    today = tracked(args.spans, args.repeat, sink=True)
    tail_on = tracked(args.spans, args.repeat, sink=True, traces_sample_rate=0.0)
    tail_off = tracked(args.spans, args.repeat, sink=True, traces_sample_rate=0.0, traces_tail_sampling=False)
    no_otel = tracked(args.spans, args.repeat, sink=True, otel=False, traces_sample_rate=0.0,
                      traces_tail_sampling=False)  # fmt: skip
    print(f"spans per run: {args.spans:,}, best of {args.repeat}")
    print("span start + end, two attributes:")
    print(f"  opswatch, no sink takes spans:              {bare:6.2f} µs/span")
    print(f"  opswatch, redacted record to a sink:        {ours:6.2f} µs/span")
    print(f"  OpenTelemetry SDK, batch processor:         {theirs:6.2f} µs/span")
    print(f"  ratio opswatch / OpenTelemetry:             {ours / theirs:6.2f}   (target <= 0.33)")
    print("tracked no-op call (track_query):")
    print(f"  no sink takes spans:                        {untraced:6.2f} µs/call")
    print(f"  sampled, span sent (today's tracked call):  {today:6.2f} µs/call")
    print(f"  not sampled, tail sampling on (span sent):  {tail_on:6.2f} µs/call   (target <= today's)")
    print(f"  not sampled, tail sampling off:             {tail_off:6.2f} µs/call   (target <= today's)")
    print(f"  the same, app without opentelemetry-api:    {no_otel:6.2f} µs/call")


if __name__ == "__main__":
    main()
