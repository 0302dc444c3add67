"""An app that already uses OpenTelemetry: with an OTel span current (and no opswatch span), opswatch's
records carry its ids and opswatch spans started there are its children, sampled as it was. Driven by
the real ``opentelemetry-sdk``; without ``opentelemetry-api`` nothing is looked up at all."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Tracer

import opswatch
from opswatch.testing import capture_logs


@pytest.fixture
def tracer() -> Iterator[Tracer]:
    provider = TracerProvider()  # not installed globally: its tracer sets the current span all the same
    yield provider.get_tracer("donations-api")
    provider.shutdown()


def hex_ids(otel_span: object) -> tuple[str, str]:
    context = otel_span.get_span_context()  # type: ignore[attr-defined]
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def test_records_inside_an_otel_span_carry_its_ids(tracer: Tracer) -> None:
    opswatch.init(console=False, capture_stdlib=False)
    with capture_logs() as logs:
        with tracer.start_as_current_span("POST /donations") as current:
            opswatch.logger.info("donation stored", church_id="church-9")
            with tracer.start_as_current_span("INSERT donations") as inner:
                opswatch.logger.info("inserting")
            opswatch.logger.info("stored")
        opswatch.logger.info("after the span")
    trace_id, span_id = hex_ids(current)
    ids = [(record.get("trace_id"), record.get("span_id")) for record in logs]
    assert ids == [(trace_id, span_id), hex_ids(inner), (trace_id, span_id), (None, None)]


def test_opswatch_spans_inside_an_otel_span_are_its_children(tracer: Tracer) -> None:
    opswatch.init(console=False, capture_stdlib=False)
    with capture_logs() as logs, tracer.start_as_current_span("POST /donations") as current:
        with opswatch.span("charge card") as charge:
            opswatch.logger.info("charging")
        with opswatch.cron_job("send-receipts") as run:
            pass
    trace_id, span_id = hex_ids(current)
    assert (charge.trace_id, charge.parent_span_id, charge.sampled) == (trace_id, span_id, True)
    assert run.span is not None and (run.span.trace_id, run.span.parent_span_id) == (trace_id, span_id)
    (charging,) = [record for record in logs if record["message"] == "charging"]
    assert (charging["trace_id"], charging["span_id"]) == (trace_id, charge.span_id)


def test_an_otel_trace_not_sampled_makes_opswatch_spans_unsampled() -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    opswatch.init(console=False, capture_stdlib=False)
    with provider.get_tracer("x").start_as_current_span("dropped") as current, opswatch.span("inside") as made:
        pass
    assert made.trace_id == hex_ids(current)[0]
    assert made.sampled is False
    provider.shutdown()


def test_an_opswatch_span_wins_over_the_otel_span_around_it(tracer: Tracer) -> None:
    opswatch.init(console=False, capture_stdlib=False)
    with capture_logs() as logs, tracer.start_as_current_span("outer"), opswatch.span("mine") as mine:
        opswatch.logger.info("inside mine")
    assert (logs[0]["trace_id"], logs[0]["span_id"]) == (mine.trace_id, mine.span_id)


def test_without_opentelemetry_nothing_is_looked_up() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import opswatch\n"
        "from opswatch._runtime import STATE\n"
        "from opswatch.testing import capture_logs\n"
        "opswatch.init(console=False, capture_stdlib=False)\n"
        "with capture_logs() as logs:\n"
        "    opswatch.logger.info('plain')\n"
        "print(STATE.get().otel, 'trace_id' in logs[0], 'opentelemetry.trace' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["None", "False", "False"], done.stderr
