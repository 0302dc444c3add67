"""The Django middleware, through Django's own test clients (sync and async)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="opswatch-tests-only",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["opswatch.integrations.django.OpswatchMiddleware"],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

# Django's modules below need the settings above.
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path

import opswatch
from opswatch import perf
from opswatch.integrations.django import OpswatchMiddleware
from opswatch.perf.testing import ManualClock, manual_clock
from opswatch.testing import capture_logs

log = opswatch.get_logger("donations")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CLOCK: list[ManualClock] = []


class PaymentFailed(Exception):
    pass


def show(request: HttpRequest, pk: int) -> JsonResponse:
    log.info("Showing donation", operation="donations.show")
    CLOCK[-1].advance(ms=int(request.GET.get("ms", "5")))
    return JsonResponse({"context": dict(opswatch.current_context()), "request_id": request.request_id})  # type: ignore[attr-defined]


async def ashow(request: HttpRequest, pk: int) -> JsonResponse:
    log.info("Showing donation", operation="donations.show")
    CLOCK[-1].advance(ms=2500)
    return JsonResponse({"context": dict(opswatch.current_context())})


def charge(request: HttpRequest) -> JsonResponse:
    raise PaymentFailed("card_declined")


urlpatterns = [
    path("donations/<int:pk>/", show),
    path("async/donations/<int:pk>/", ashow),
    path("charge/", charge),
]


@pytest.fixture(autouse=True)
def this_modules_urls() -> Iterator[None]:
    """Django is configured once per process, by whichever Django test module loads first: route to ours."""
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=["opswatch.integrations.django.OpswatchMiddleware"]):
        yield


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    perf.reset()
    with manual_clock() as clock:
        CLOCK.append(clock)
        yield clock
        CLOCK.pop()
    perf.reset()


def perf_records(logs: list[dict]) -> list[dict]:
    return [r for r in logs if r["logger"] == "perf"]


def test_it_generates_a_request_id_echoes_it_and_puts_it_on_the_request(clock: ManualClock) -> None:
    with capture_logs() as logs:
        response = Client().get("/donations/42/")
    rid = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert response.json()["request_id"] == rid
    [record] = [r for r in logs if r.get("operation") == "donations.show"]
    assert record["request_id"] == rid


def test_it_keeps_a_sane_client_request_id(clock: ManualClock) -> None:
    response = Client().get("/donations/1/", headers={"X-Request-ID": "req-7"})
    assert response.headers["X-Request-ID"] == "req-7"


def test_it_binds_the_url_pattern_traceparent_and_client(clock: ManualClock) -> None:
    with capture_logs() as logs:
        context = Client().get("/donations/42/", headers={"traceparent": TRACEPARENT}).json()["context"]
    assert context["route"] == "/donations/<int:pk>/"
    assert context["method"] == "GET"
    assert context["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert context["client_ip"] == "127.0.0.1"
    [record] = [r for r in logs if r.get("operation") == "donations.show"]
    assert record["route"] == "/donations/<int:pk>/"


def test_it_measures_the_request_with_the_api_thresholds(clock: ManualClock) -> None:
    with capture_logs() as logs:
        Client().get("/donations/42/?ms=40")
        Client().get("/donations/42/?ms=3100")
    fast, critical = perf_records(logs)
    assert fast["operation"] == "perf.api.GET /donations/<int:pk>/"
    assert fast["status"] == 200
    assert critical["operation"] == "performance.critical.api.GET /donations/<int:pk>/"
    assert critical["durationMs"] == 3100


def test_it_logs_a_view_error_once_and_django_answers_500(clock: ManualClock) -> None:
    client = Client(raise_request_exception=False)
    with capture_logs() as logs:
        response = client.post("/charge/?page=3", headers={"Authorization": "Token abcdef-secret"})
    assert response.status_code == 500
    errors = [r for r in logs if r.get("operation") == "http.unhandled_exception"]
    assert len(errors) == 1
    assert errors[0]["route"] == "/charge/"
    assert errors[0]["query"] == {"page": "3"}
    assert errors[0]["error"]["message"] == "card_declined"
    assert "abcdef-secret" not in str(logs)
    [measured] = perf_records(logs)
    assert (measured["status"], measured["error_type"]) == (500, "PaymentFailed")


def test_it_hands_the_exception_back_to_django(clock: ManualClock) -> None:
    with capture_logs() as logs, pytest.raises(PaymentFailed):
        Client().get("/charge/")  # Django's test client re-raises what the handler saw
    assert len([r for r in logs if r.get("operation") == "http.unhandled_exception"]) == 1


def test_it_logs_once_when_django_propagates_the_exception_through_it(clock: ManualClock) -> None:
    with (
        override_settings(DEBUG_PROPAGATE_EXCEPTIONS=True),
        capture_logs() as logs,
        pytest.raises(PaymentFailed),
    ):
        Client(raise_request_exception=False).get("/charge/")  # process_exception, then out through __call__
    assert len([r for r in logs if r.get("operation") == "http.unhandled_exception"]) == 1
    assert len(perf_records(logs)) == 1


def test_it_names_unmatched_requests_without_the_raw_path(clock: ManualClock) -> None:
    with capture_logs() as logs:
        assert Client().get("/nowhere/99/").status_code == 404
    [measured] = perf_records(logs)
    assert measured["operation"] == "perf.api.GET <unmatched>"


def test_it_works_in_async_mode(clock: ManualClock) -> None:
    async def call() -> Any:
        return await AsyncClient().get("/async/donations/5/", headers={"X-Request-ID": "async-1"})

    with capture_logs() as logs:
        response = asyncio.run(call())
    assert response.headers["X-Request-ID"] == "async-1"
    context = response.json()["context"]
    assert context["request_id"] == "async-1"
    assert context["route"] == "/async/donations/<int:pk>/"
    [record] = [r for r in logs if r.get("operation") == "donations.show"]
    assert record["request_id"] == "async-1"
    [measured] = perf_records(logs)
    assert measured["operation"] == "performance.warn.GET /async/donations/<int:pk>/"


def test_it_leaves_no_context_behind(clock: ManualClock) -> None:
    Client().get("/donations/1/")
    assert "request_id" not in opswatch.current_context()


@pytest.mark.parametrize(
    ("options", "named"),
    [({"trust_request_ids": True}, "OPSWATCH_MIDDLEWARE['trust_request_ids']"),
     ({"record_client": "no"}, "OPSWATCH_MIDDLEWARE['record_client']"),
     (["record_client"], "OPSWATCH_MIDDLEWARE")],
)
def test_it_rejects_bad_options_naming_the_setting(options: Any, named: str) -> None:
    with override_settings(OPSWATCH_MIDDLEWARE=options), pytest.raises(opswatch.ConfigError) as raised:
        OpswatchMiddleware(lambda request: None)
    assert raised.value.setting == named


def test_it_takes_options_from_settings(clock: ManualClock) -> None:
    with override_settings(OPSWATCH_MIDDLEWARE={"trust_request_id": False, "record_client": False}):
        response = Client().get("/donations/1/", headers={"X-Request-ID": "client-chosen"})
    assert response.headers["X-Request-ID"] != "client-chosen"
    assert "client_ip" not in response.json()["context"]


def test_it_logs_a_view_error_once_even_through_the_stdlib_bridge(clock: ManualClock) -> None:
    opswatch.init(console=False, capture_stdlib=True)
    try:
        with capture_logs() as logs:
            Client(raise_request_exception=False).get("/charge/")
    finally:
        opswatch.shutdown()
    assert [r["logger"] for r in logs if r["level"] == "error"] == ["http"]
