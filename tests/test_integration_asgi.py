"""The ASGI middleware, through Starlette's and FastAPI's own test client."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

import opswatch
from opswatch import perf
from opswatch.integrations.asgi import OpswatchMiddleware
from opswatch.perf.testing import ManualClock, manual_clock
from opswatch.testing import capture_logs

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette 1.x suggests httpx2 for its test client
    from starlette.testclient import TestClient

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


def the_donations_service(clock: ManualClock) -> Starlette:
    """A Starlette app with an id route, a mounted API, a failing route and a websocket."""

    async def show(request: Request) -> JSONResponse:
        log.info("Showing donation", operation="donations.show")
        clock.advance(ms=int(request.query_params.get("ms", "5")))
        return JSONResponse({"context": dict(opswatch.current_context())})

    async def fail(request: Request) -> JSONResponse:
        raise PaymentFailed("card_declined")

    async def user(request: Request) -> PlainTextResponse:
        return PlainTextResponse("user")

    async def receipt(request: Request) -> PlainTextResponse:
        def send_receipt() -> None:
            log.info("Receipt sent", operation="donations.receipt_sent")

        return PlainTextResponse("queued", status_code=202, background=BackgroundTask(send_receipt))

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    app = Starlette(
        routes=[
            Route("/donations/{donation_id:int}", show),
            Route("/fail", fail, methods=["POST"]),
            Route("/receipts", receipt, methods=["POST"]),
            Mount("/v1", routes=[Route("/users/{user_id}", user)]),
            WebSocketRoute("/ws", echo),
        ]
    )
    app.add_middleware(OpswatchMiddleware)
    return app


def client_for(app: object, **options: object) -> TestClient:
    return TestClient(app, **options)  # type: ignore[arg-type]


def request_records(logs: list[dict]) -> list[dict]:
    return [r for r in logs if r["logger"] == "perf"]


def test_it_generates_a_request_id_and_echoes_it(clock: ManualClock) -> None:
    with client_for(the_donations_service(clock)) as client, capture_logs() as logs:
        response = client.get("/donations/42")
    rid = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert response.json()["context"]["request_id"] == rid
    [handler_record] = [r for r in logs if r.get("operation") == "donations.show"]
    assert handler_record["request_id"] == rid


def test_it_keeps_a_sane_request_id_from_the_client(clock: ManualClock) -> None:
    with client_for(the_donations_service(clock)) as client:
        response = client.get("/donations/42", headers={"X-Request-ID": "req-abc.123"})
    assert response.headers["x-request-id"] == "req-abc.123"


@pytest.mark.parametrize("bad", ["has space", "x" * 200, "<script>", "-leading-dash", "a\tb"])
def test_it_replaces_a_request_id_that_is_not_sane(clock: ManualClock, bad: str) -> None:
    with client_for(the_donations_service(clock)) as client:
        response = client.get("/donations/42", headers={"X-Request-ID": bad})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_it_binds_method_route_template_and_client_for_the_request(clock: ManualClock) -> None:
    with client_for(the_donations_service(clock)) as client, capture_logs() as logs:
        client.get("/donations/42")
    [record] = [r for r in logs if r.get("operation") == "donations.show"]
    assert record["method"] == "GET"
    assert record["route"] == "/donations/{donation_id}"
    assert record["client_ip"] == "testclient"
    assert "42" not in record["route"]


def test_it_adds_the_status_to_the_context_once_the_response_starts(clock: ManualClock) -> None:
    with client_for(the_donations_service(clock)) as client, capture_logs() as logs:
        client.post("/receipts")
    [record] = [r for r in logs if r.get("operation") == "donations.receipt_sent"]
    assert record["status"] == 202
    assert record["route"] == "/receipts"


def test_it_reads_the_traceparent_header(clock: ManualClock) -> None:
    with client_for(the_donations_service(clock)) as client, capture_logs() as logs:
        client.get("/donations/1", headers={"traceparent": TRACEPARENT})
    [record] = [r for r in logs if r.get("operation") == "donations.show"]
    assert record["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert record["span_id"] == "00f067aa0ba902b7"


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        TRACEPARENT + "-extra",
    ],
)
def test_it_ignores_a_malformed_traceparent(clock: ManualClock, bad: str) -> None:
    with client_for(the_donations_service(clock)) as client:
        context = client.get("/donations/1", headers={"traceparent": bad}).json()["context"]
    assert "trace_id" not in context


def test_it_measures_the_request_with_the_api_thresholds(clock: ManualClock) -> None:
    with client_for(the_donations_service(clock)) as client, capture_logs() as logs:
        client.get("/donations/7?ms=20")
        client.get("/donations/7?ms=1500")
        client.get("/donations/7?ms=3500")
    fast, slow, critical = request_records(logs)
    assert fast["operation"] == "perf.api.GET /donations/{donation_id}"
    assert fast["status"] == 200
    assert fast["duration_ms"] == 20.0
    assert slow["operation"] == "performance.warn.GET /donations/{donation_id}"
    assert slow["thresholdMs"] == 1000
    assert critical["level"] == "error"
    assert critical["operation"] == "performance.critical.api.GET /donations/{donation_id}"
    assert critical["route"] == "/donations/{donation_id}"
    assert critical["request_id"]


def test_it_joins_mount_prefixes_in_the_route_template(clock: ManualClock) -> None:
    with client_for(the_donations_service(clock)) as client, capture_logs() as logs:
        client.get("/v1/users/u-9")
    [record] = request_records(logs)
    assert record["route"] == "/v1/users/{user_id}"


def test_it_names_unmatched_requests_without_the_raw_path(clock: ManualClock) -> None:
    with client_for(the_donations_service(clock)) as client, capture_logs() as logs:
        assert client.get("/nowhere/123").status_code == 404
    [record] = request_records(logs)
    assert record["operation"] == "perf.api.GET <unmatched>"
    assert record["status"] == 404
    assert "route" not in record


def test_it_logs_an_unhandled_exception_once_and_reraises_it(clock: ManualClock) -> None:
    app = the_donations_service(clock)
    with client_for(app) as client, capture_logs() as logs, pytest.raises(PaymentFailed):
        client.post("/fail?token=abc123&page=2", headers={"Authorization": "Bearer sk_live_abcdef123456"})
    errors = [r for r in logs if r["level"] == "error"]
    assert len(errors) == 1
    [error] = errors
    assert error["operation"] == "http.unhandled_exception"
    assert error["error"]["type"].endswith("PaymentFailed")
    assert error["route"] == "/fail"
    assert error["method"] == "POST"
    assert error["path"] == "/fail"
    assert error["query"]["page"] == "2"
    assert error["query"]["token"] != "abc123"
    assert error["headers"]["authorization"] != "Bearer sk_live_abcdef123456"
    assert "sk_live_abcdef123456" not in str(logs)
    [measured] = request_records(logs)
    assert measured["status"] == 500
    assert measured["error_type"] == "PaymentFailed"


def test_it_logs_an_exception_once_through_nested_middleware(clock: ManualClock) -> None:
    app = OpswatchMiddleware(the_donations_service(clock))  # a second layer around the app's own
    with client_for(app) as client, capture_logs() as logs, pytest.raises(PaymentFailed):
        client.post("/fail")
    assert [r["operation"] for r in logs if r["level"] == "error"] == ["http.unhandled_exception"]


def test_it_lets_the_framework_answer_500_after_logging(clock: ManualClock) -> None:
    app = the_donations_service(clock)
    with client_for(app, raise_server_exceptions=False) as client, capture_logs() as logs:
        response = client.post("/fail")
    assert response.status_code == 500
    assert [r["operation"] for r in logs if r["level"] == "error"] == ["http.unhandled_exception"]


def test_it_leaves_no_context_behind_after_the_request(clock: ManualClock) -> None:
    with client_for(the_donations_service(clock)) as client:
        client.get("/donations/1")
    assert "request_id" not in opswatch.current_context()


def test_it_passes_websockets_through(clock: ManualClock) -> None:
    with client_for(the_donations_service(clock)) as client, client.websocket_connect("/ws") as ws:
        assert ws.receive_text() == "hi"


def test_it_finds_fastapi_route_templates_through_included_routers(clock: ManualClock) -> None:
    app = FastAPI()
    router = APIRouter(prefix="/donations")

    @router.get("/{donation_id}")
    def get_donation(donation_id: int) -> dict[str, object]:
        log.info("Showing donation", operation="donations.show")
        return {"id": donation_id, "route": opswatch.current_context().get("route")}

    app.include_router(router, prefix="/api")
    app.add_middleware(OpswatchMiddleware)
    with client_for(app) as client, capture_logs() as logs:
        response = client.get("/api/donations/5")
    assert response.json() == {"id": 5, "route": "/api/donations/{donation_id}"}
    assert request_records(logs)[0]["operation"] == "perf.api.GET /api/donations/{donation_id}"


def test_it_logs_once_when_a_fastapi_exception_handler_answers(clock: ManualClock) -> None:
    app = FastAPI()

    @app.get("/charge")
    def charge() -> None:
        raise PaymentFailed("card_declined")

    @app.exception_handler(PaymentFailed)
    async def payment_failed(request: Request, exc: PaymentFailed) -> JSONResponse:
        return JSONResponse({"error": "payment"}, status_code=402)

    app.add_middleware(OpswatchMiddleware, trust_request_id=False)
    with client_for(app) as client, capture_logs() as logs:
        response = client.get("/charge", headers={"X-Request-ID": "from-client"})
    assert response.status_code == 402
    assert response.headers["x-request-id"] != "from-client"
    assert [r for r in logs if r["level"] == "error"] == []
    assert request_records(logs)[0]["status"] == 402
