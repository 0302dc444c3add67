"""Tail sampling, the SDK's side: with a server sink, the spans of traces not sampled are still built and
shipped to the opswatch server, each marked ``"sampled": false`` (the server keeps errors and slow traces
whatever the rate); never to an OTLP collector; ``traces_tail_sampling=False`` builds nothing for them.

The opswatch server here is the transport tests' ingest server (a real HTTP server keeping each native
record as it arrived), so the test reads the records the SDK sent, whatever the server would keep."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

import opswatch
from opswatch.integrations.asgi import OpswatchMiddleware
from otlp_collector import Collector
from test_sink_server import IngestServer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette 1.x suggests httpx2 for its test client
    from starlette.testclient import TestClient


@pytest.fixture
def ingest() -> Iterator[IngestServer]:
    running = IngestServer()
    yield running
    opswatch.shutdown(2)
    running.stop()


def spans(ingest: IngestServer) -> list[dict[str, Any]]:
    assert opswatch.flush(10)
    return [event for event in ingest.events.values() if event.get("kind") == "span"]


def test_unsampled_spans_go_to_the_server_marked_not_sampled_and_sampled_ones_unmarked(
    ingest: IngestServer, tmp_path: Path
) -> None:
    opswatch.init(dsn=ingest.dsn, traces_sample_rate=0.0, console=False, capture_stdlib=False)
    with opswatch.span("nightly import") as root:
        opswatch.track_query("donations.insert", lambda: None)
        opswatch.logger.info("imported")
    assert root.sampled is False
    opswatch.init(dsn=ingest.dsn, console=False, capture_stdlib=False)
    with opswatch.span("kept"):
        pass
    by_name = {span["name"]: span for span in spans(ingest)}
    assert set(by_name) == {"nightly import", "donations.insert", "kept"}
    assert by_name["nightly import"]["sampled"] is False
    assert by_name["donations.insert"]["sampled"] is False
    assert by_name["donations.insert"]["parent_span_id"] == root.span_id
    assert "sampled" not in by_name["kept"]
    (log,) = [event for event in ingest.events.values() if event["message"] == "imported"]
    assert log["trace_id"] == root.trace_id


def test_a_caller_that_did_not_sample_makes_the_request_span_unsampled_but_shipped(
    ingest: IngestServer,
) -> None:
    app = FastAPI()
    app.add_middleware(OpswatchMiddleware)

    @app.get("/checkout")
    def checkout() -> dict[str, str]:
        return {"ok": "yes"}

    opswatch.init(dsn=ingest.dsn, console=False, capture_stdlib=False)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    with TestClient(app) as client:
        client.get("/checkout", headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-00"})
    (request,) = spans(ingest)
    assert (request["trace_id"], request["span_kind"], request["sampled"]) == (trace, "server", False)


def test_unsampled_spans_are_redacted_like_the_others(ingest: IngestServer) -> None:
    opswatch.init(dsn=ingest.dsn, traces_sample_rate=0.0, console=False, capture_stdlib=False)
    with opswatch.span("mail jane.doe@example.com", password="hunter2"):
        pass
    (span,) = spans(ingest)
    assert "jane.doe@example.com" not in span["name"]
    assert span["attributes"] == {"password": "[REDACTED]"}


def test_unsampled_spans_never_reach_an_otlp_collector(ingest: IngestServer, tmp_path: Path) -> None:
    collector = Collector()
    try:
        opswatch.init(dsn=ingest.dsn, otlp_endpoint=collector.endpoint, traces_sample_rate=0.0,
                      console=False, capture_stdlib=False)  # fmt: skip
        with opswatch.span("not sampled"):
            opswatch.track_query("donations.find", lambda: None)
        assert [span["name"] for span in spans(ingest)] == ["donations.find", "not sampled"]
        assert collector.spans == [] and collector.requests == []
    finally:
        opswatch.shutdown(2)
        collector.close()


def test_with_tail_sampling_off_unsampled_traces_ship_no_span(ingest: IngestServer) -> None:
    opswatch.init(dsn=ingest.dsn, traces_sample_rate=0.0, traces_tail_sampling=False, console=False,
                  capture_stdlib=False)  # fmt: skip
    with opswatch.span("not sampled") as root:
        opswatch.track_query("donations.find", lambda: None)
        opswatch.logger.info("still in the trace")
    assert spans(ingest) == []
    (log,) = [event for event in ingest.events.values() if event["message"] == "still in the trace"]
    assert log["trace_id"] == root.trace_id


def test_the_setting_reads_the_environment_and_defaults_to_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert opswatch.init(console=False, capture_stdlib=False).traces_tail_sampling is None
    monkeypatch.setenv("OPSWATCH_TRACES_TAIL_SAMPLING", "false")
    assert opswatch.init(console=False, capture_stdlib=False).traces_tail_sampling is False
