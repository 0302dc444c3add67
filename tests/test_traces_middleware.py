"""Requests through the web middleware become server spans (OTel's HTTP attribute names) when the SDK
ships to a server: a FastAPI app (ASGI) and a Flask app (WSGI), each with an ``opswatch.span`` inside,
an incoming ``traceparent`` continued, and the request's logs carrying the request span's ids."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from flask import Flask

import opswatch
from opswatch.integrations.asgi import OpswatchMiddleware
from opswatch.integrations.wsgi import instrument_flask
from opswatch.server.query import run_query
from opswatch.server.testing import RunningServer, running_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette 1.x suggests httpx2 for its test client
    from starlette.testclient import TestClient

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        opswatch.init(dsn=running.dsn, service="donations-api", console=False, capture_stdlib=False,
                      spool_dir=str(tmp_path / "spool"))  # fmt: skip
        yield running


def sql(server: RunningServer, text: str) -> list[tuple[Any, ...]]:
    return run_query(server.ctx.store, text).rows


def fastapi_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(OpswatchMiddleware)

    @app.get("/donations/{donation_id}")
    async def show(donation_id: int) -> dict[str, int]:
        with opswatch.span("load donation", kind="client", attributes={"db.system": "postgresql"}):
            opswatch.logger.info("loaded", donation_id=donation_id)
        return {"id": donation_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("broken")

    return app


def test_an_asgi_request_is_a_server_span_continuing_the_callers_trace(server: RunningServer) -> None:
    with TestClient(fastapi_app(), raise_server_exceptions=False) as client:
        assert client.get("/donations/42", headers={"traceparent": TRACEPARENT}).status_code == 200
        assert client.get("/boom").status_code == 500
    assert opswatch.flush(10)
    request, inner = sql(
        server,
        """SELECT name, kind, trace_id, parent_span_id, span_id, status,
        attributes->>'$."http.request.method"', attributes->>'$."http.route"',
        attributes->'$."http.response.status_code"' FROM spans
        WHERE trace_id = '4bf92f3577b34da6a3ce929d0e0e4736' ORDER BY timestamp""",
    )
    assert request[:4] == ("GET /donations/{donation_id}", "server", "4bf92f3577b34da6a3ce929d0e0e4736",
                           "00f067aa0ba902b7")  # fmt: skip
    assert request[5:] == ("unset", "GET", "/donations/{donation_id}", "200")
    assert inner[:2] == ("load donation", "client") and inner[3] == request[4]
    assert sql(server, "SELECT span_id FROM logs WHERE message = 'loaded'") == [(inner[4],)]
    failed = sql(
        server,
        "SELECT status, attributes->'$.\"http.response.status_code\"' FROM spans WHERE name = 'GET /boom'",
    )
    assert failed == [("error", "500")]


def test_a_wsgi_request_is_a_server_span(server: RunningServer) -> None:
    app = Flask(__name__)
    instrument_flask(app)

    @app.get("/receipts/<int:receipt_id>")
    def receipt(receipt_id: int) -> dict[str, int]:
        opswatch.logger.info("receipt shown")
        return {"id": receipt_id}

    answer = app.test_client().get("/receipts/7")
    assert answer.status_code == 200
    answer.close()  # the WSGI body is closed: the request ends
    assert opswatch.flush(10)
    ((name, kind, span_id, route),) = sql(
        server, "SELECT name, kind, span_id, attributes->>'$.\"http.route\"' FROM spans"
    )
    assert (name, kind, route) == ("GET /receipts/<int:receipt_id>", "server", "/receipts/<int:receipt_id>")
    assert sql(server, "SELECT span_id FROM logs WHERE message = 'receipt shown'") == [(span_id,)]
