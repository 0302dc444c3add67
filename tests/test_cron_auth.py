"""verify_cron_auth and its FastAPI, Flask and Django helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

import opswatch
from opswatch import verify_cron_auth
from opswatch.crons.auth import CronAuthError
from opswatch.testing import capture_logs

SECRET = "cron-s3cret-value-0123456789"


@pytest.fixture(autouse=True)
def production_with_secret() -> Iterator[None]:
    opswatch.init(console=False, capture_stdlib=False, environment="production", cron_secret=SECRET)
    yield
    opswatch.shutdown()


def test_it_lets_the_scheduler_in_with_the_secret() -> None:
    assert verify_cron_auth(f"Bearer {SECRET}") is None
    assert verify_cron_auth(f"bearer {SECRET}") is None  # the scheme is case-insensitive
    assert verify_cron_auth(f"  Bearer   {SECRET}  ") is None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        SECRET,
        f"Basic {SECRET}",
        f"Bearer {SECRET[:-1]}",
        f"Bearer {SECRET}x",
        f"Bearer {SECRET[:-1]}X",
        "Bearer undefined",
        "Bearer ünïcödé",
    ],
)
def test_it_refuses_anything_else_with_401(header: str | None) -> None:
    error = verify_cron_auth(header)
    assert isinstance(error, CronAuthError)
    assert error.status == 401
    assert error.headers == {"WWW-Authenticate": "Bearer"}
    assert "Bearer <CRON_SECRET>" in error.reason


def test_it_logs_a_refusal_without_the_header() -> None:
    with capture_logs() as records:
        verify_cron_auth("Bearer guessed-secret")
    (record,) = records
    assert record["operation"] == "cron.auth.rejected" and record["level"] == "warn"
    assert "guessed-secret" not in json.dumps(record)


def test_it_refuses_everything_with_500_when_production_has_no_secret() -> None:
    opswatch.init(console=False, capture_stdlib=False, environment="production")
    with capture_logs() as records:
        error = verify_cron_auth("Bearer ")
        assert verify_cron_auth(None) == error
    assert error is not None and error.status == 500
    assert "CRON_SECRET" in error.reason
    assert records[0]["level"] == "error" and records[0]["operation"] == "cron.auth.misconfigured"


def test_it_refuses_staging_without_a_secret_too() -> None:
    error = verify_cron_auth("Bearer x", secret="", environment="staging")
    assert error is not None and error.status == 500


def test_it_lets_development_in_without_a_secret_and_warns() -> None:
    with capture_logs() as records:
        assert verify_cron_auth(None, secret="", environment="development") is None
    assert records[0]["level"] == "warn" and records[0]["operation"] == "cron.auth.open"


def test_it_takes_the_secret_as_an_argument() -> None:
    assert verify_cron_auth("Bearer other", secret="other") is None
    error = verify_cron_auth(f"Bearer {SECRET}", secret="other")
    assert error is not None and error.status == 401


# -- framework helpers ---------------------------------------------------------------------------------


def test_it_guards_fastapi_routes_with_a_dependency() -> None:
    import httpx
    from fastapi import Depends, FastAPI

    from opswatch.crons.fastapi import require_cron_auth

    app = FastAPI()

    @app.get("/api/cron/check-expired-subscriptions", dependencies=[Depends(require_cron_auth)])
    def check_expired_subscriptions() -> dict[str, bool]:
        return {"success": True}

    async def call(headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/api/cron/check-expired-subscriptions", headers=headers)

    ok = asyncio.run(call({"Authorization": f"Bearer {SECRET}"}))
    refused = asyncio.run(call({"Authorization": "Bearer nope"}))
    assert ok.status_code == 200 and ok.json() == {"success": True}
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "CRON_SECRET" in refused.json()["detail"]


def test_it_guards_flask_views_sync_and_async() -> None:
    from flask import Flask

    from opswatch.crons.flask import cron_auth_required

    app = Flask(__name__)

    @app.get("/cron/sync")
    @cron_auth_required
    def sync_view() -> dict[str, bool]:
        return {"success": True}

    @app.get("/cron/async")
    @cron_auth_required
    async def async_view() -> dict[str, bool]:
        await asyncio.sleep(0)
        return {"success": True}

    client = app.test_client()
    for path in ("/cron/sync", "/cron/async"):
        ok = client.get(path, headers={"Authorization": f"Bearer {SECRET}"})
        refused = client.get(path)
        assert ok.status_code == 200 and ok.get_json() == {"success": True}
        assert refused.status_code == 401 and "CRON_SECRET" in refused.get_json()["error"]
        assert refused.headers["WWW-Authenticate"] == "Bearer"


def test_it_guards_django_views_sync_and_async() -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(DEBUG=False, ALLOWED_HOSTS=["testserver"], DEFAULT_CHARSET="utf-8")
    from django.http import HttpRequest, JsonResponse
    from django.test import RequestFactory

    from opswatch.crons.django import cron_auth_required

    @cron_auth_required
    def sync_view(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"success": True})

    @cron_auth_required
    async def async_view(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"success": True})

    factory = RequestFactory()
    good = factory.get("/cron", HTTP_AUTHORIZATION=f"Bearer {SECRET}")
    bad = factory.get("/cron", HTTP_AUTHORIZATION="Bearer wrong")
    assert sync_view(good).status_code == 200
    refused = sync_view(bad)
    assert refused.status_code == 401 and json.loads(refused.content)["error"].startswith("Unauthorized")
    assert refused["WWW-Authenticate"] == "Bearer"
    assert asyncio.run(async_view(good)).status_code == 200
    assert asyncio.run(async_view(bad)).status_code == 401
