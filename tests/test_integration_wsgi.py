"""The WSGI middleware and the Flask integration, through Flask's and Werkzeug's own test clients."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from flask import Flask, jsonify
from werkzeug.test import Client

import opswatch
from opswatch import perf
from opswatch.integrations.wsgi import OpswatchWSGIMiddleware, instrument_flask
from opswatch.perf.testing import ManualClock, manual_clock
from opswatch.testing import capture_logs

log = opswatch.get_logger("donations")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class PaymentFailed(Exception):
    pass


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    perf.reset()
    with manual_clock() as clock:
        yield clock
    perf.reset()


def the_donations_app(clock: ManualClock, *, testing: bool = False) -> Flask:
    app = Flask("donations")
    app.config["TESTING"] = testing

    @app.before_request
    def audit() -> None:
        log.info("Request in", operation="audit.request")

    @app.get("/donations/<int:donation_id>")
    def show(donation_id: int) -> Any:
        log.info("Showing donation", operation="donations.show")
        clock.advance(ms=1200)
        return jsonify(context=dict(opswatch.current_context()))

    @app.post("/charge")
    def charge() -> Any:
        raise PaymentFailed("card_declined")

    instrument_flask(app)
    return app


def perf_records(logs: list[dict]) -> list[dict]:
    return [r for r in logs if r["logger"] == "perf"]


def test_it_generates_a_request_id_and_echoes_it(clock: ManualClock) -> None:
    client = the_donations_app(clock).test_client()
    with capture_logs() as logs:
        response = client.get("/donations/42")
    rid = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    [record] = [r for r in logs if r.get("operation") == "donations.show"]
    assert record["request_id"] == rid


def test_it_keeps_a_sane_client_request_id_and_replaces_a_bad_one(clock: ManualClock) -> None:
    client = the_donations_app(clock).test_client()
    assert client.get("/donations/1", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/donations/1", headers={"X-Request-ID": "a b"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_it_binds_the_flask_route_template_traceparent_and_client(clock: ManualClock) -> None:
    client = the_donations_app(clock).test_client()
    with capture_logs() as logs:
        context = client.get("/donations/42", headers={"traceparent": TRACEPARENT}).get_json()["context"]
    assert context["route"] == "/donations/<int:donation_id>"
    assert context["method"] == "GET"
    assert context["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert context["span_id"] == "00f067aa0ba902b7"
    assert context["client_ip"] == "127.0.0.1"
    [record] = [r for r in logs if r.get("operation") == "donations.show"]
    assert record["route"] == "/donations/<int:donation_id>"
    [audit] = [r for r in logs if r.get("operation") == "audit.request"]  # a hook registered earlier
    assert audit["route"] == "/donations/<int:donation_id>"


def test_it_measures_the_request_with_the_api_thresholds(clock: ManualClock) -> None:
    client = the_donations_app(clock).test_client()
    with capture_logs() as logs:
        client.get("/donations/42").get_data()  # the measurement ends when the body is consumed
    [record] = perf_records(logs)
    assert record["operation"] == "performance.warn.GET /donations/<int:donation_id>"
    assert record["status"] == 200
    assert record["durationMs"] == 1200


def test_it_logs_a_view_error_once_and_flask_answers_500(clock: ManualClock) -> None:
    client = the_donations_app(clock).test_client()
    with capture_logs() as logs:
        response = client.post("/charge?page=1", headers={"X-Api-Key": "s3cr3t-value"})
        response.get_data()
    assert response.status_code == 500
    errors = [r for r in logs if r["level"] == "error"]
    assert [r["operation"] for r in errors] == ["http.unhandled_exception"]
    assert errors[0]["route"] == "/charge"
    assert errors[0]["error"]["message"] == "card_declined"
    assert errors[0]["headers"]["x-api-key"] == "[REDACTED]"
    assert "s3cr3t-value" not in str(logs)
    [measured] = perf_records(logs)
    assert measured["status"] == 500
    assert measured["error_type"] == "PaymentFailed"


def test_it_reraises_when_flask_propagates_exceptions(clock: ManualClock) -> None:
    client = the_donations_app(clock, testing=True).test_client()
    with capture_logs() as logs, pytest.raises(PaymentFailed):
        client.post("/charge")
    assert [r["operation"] for r in logs if r["level"] == "error"] == ["http.unhandled_exception"]


def test_it_leaves_no_context_behind(clock: ManualClock) -> None:
    the_donations_app(clock).test_client().get("/donations/1")
    assert "request_id" not in opswatch.current_context()


# -- plain WSGI --------------------------------------------------------------------------------------


def streaming_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A plain WSGI app that streams its body and logs while it does."""
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body() -> Iterator[bytes]:
        for part in (b"a", b"b"):
            log.info("chunk", operation="stream.chunk")
            yield part
        if environ.get("QUERY_STRING") == "explode":
            raise PaymentFailed("mid-stream")

    return body()


def test_it_binds_context_while_a_plain_wsgi_body_streams(clock: ManualClock) -> None:
    app = OpswatchWSGIMiddleware(streaming_app, route_resolver=lambda environ: "/stream")
    with capture_logs() as logs:
        response = Client(app).get("/stream/1")
        assert response.get_data() == b"ab"
        response.close()
    chunks = [r for r in logs if r.get("operation") == "stream.chunk"]
    assert len(chunks) == 2
    assert all(r["route"] == "/stream" and r["request_id"] for r in chunks)
    [measured] = perf_records(logs)
    assert measured["operation"] == "perf.api.GET /stream"
    assert measured["status"] == 200


def test_it_logs_an_error_raised_while_streaming_once(clock: ManualClock) -> None:
    app = OpswatchWSGIMiddleware(streaming_app)
    with capture_logs() as logs, pytest.raises(PaymentFailed):
        Client(app).get("/stream/1?explode").get_data()
    errors = [r for r in logs if r["level"] == "error"]
    assert [r["operation"] for r in errors] == ["http.unhandled_exception"]
    assert perf_records(logs)[0]["operation"] == "perf.api.GET <unmatched>"


def test_it_keeps_a_request_id_the_app_set_itself(clock: ManualClock) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("204 No Content", [("X-Request-ID", "app-chosen")])
        return []

    response = Client(OpswatchWSGIMiddleware(app)).get("/")
    assert response.headers.getlist("X-Request-ID") == ["app-chosen"]
