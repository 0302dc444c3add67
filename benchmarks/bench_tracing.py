"""The cost of one span (start + end, two attributes): opswatch's light spans against the OpenTelemetry
Python SDK, in one run.

Run: .venv/bin/python benchmarks/bench_tracing.py [--spans N] [--repeat R]

opswatch: ``with opswatch.span("op", a=1, b="x")`` with redaction on (the default) and a sink that
takes spans and keeps the record (what the server sink's ``write`` receives; its batching and posting
happen on its own thread). OpenTelemetry: ``tracer.start_as_current_span("op", attributes=...)`` with a
``BatchSpanProcessor`` exporting to an ``InMemorySpanExporter`` (the exporter's work is on its thread too).
Also: opswatch with no sink taking spans (the span is timed and its context set, nothing is built), and a
tracked no-op call (``track_query``) with a sink taking spans, kept (the default) and not sampled
(``traces_sample_rate=0``: it must cost no more than a tracked call did before sampling existed).
Prints best-of-R microseconds per span and the ratio opswatch / OpenTelemetry (target: at most 1/3).
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
    """Takes spans only and keeps the last record."""

    name = "keep"
    accepts_spans = True

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


def tracked_with_spans(rate: float | None, count: int, repeat: int) -> float | None:
    """A tracked no-op with a sink taking spans, at ``traces_sample_rate=rate`` (None: the default);
    None when this version of opswatch has no such setting."""
    try:
        if rate is None:
            opswatch.init(console=False, capture_stdlib=False)
        else:
            opswatch.init(console=False, capture_stdlib=False, traces_sample_rate=rate)
    except opswatch.ConfigError:
        return None
    STATE.get().add_sink(KeepSink())
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
    tracked = tracked_with_spans(None, args.spans, args.repeat)
    unsampled = tracked_with_spans(0.0, args.spans, args.repeat)
    print(f"spans per run: {args.spans:,}, best of {args.repeat}")
    print(f"opswatch, no sink takes spans:        {bare:6.2f} µs/span")
    print(f"opswatch, redacted record to a sink:  {ours:6.2f} µs/span")
    print(f"OpenTelemetry SDK, batch processor:   {theirs:6.2f} µs/span")
    print(f"ratio opswatch / OpenTelemetry:       {ours / theirs:6.2f}")
    print(f"tracked call, spans kept (default):   {tracked or 0:6.2f} µs/call")
    if unsampled is None:
        print("tracked call, traces_sample_rate=0:   (no such setting in this version)")
    else:
        print(f"tracked call, traces_sample_rate=0:   {unsampled:6.2f} µs/call")


if __name__ == "__main__":
    main()
