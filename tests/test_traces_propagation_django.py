"""Django's middleware continues a Sentry trace (``sentry-trace``), and spans opened in a view inherit the
request's sampling decision: sampled, they nest under the request span; not sampled, nothing ships but
the view's log records still carry the caller's ``trace_id``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False, SECRET_KEY="opswatch-tests-only", ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__,
        MIDDLEWARE=["opswatch.integrations.django.OpswatchMiddleware"], INSTALLED_APPS=[], DATABASES={},
        USE_TZ=True,
    )  # fmt: skip
    django.setup()

# Django's modules below need the settings above.
from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path

import opswatch
from opswatch.server.query import run_query
from opswatch.server.testing import RunningServer, running_server

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"


def pledge(request: HttpRequest) -> JsonResponse:
    with opswatch.span("check pledge"):
        opswatch.logger.info("pledge checked")
    return JsonResponse({"ok": True})


urlpatterns = [path("pledges", pledge)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        opswatch.init(dsn=running.dsn, service="pledges", console=False, capture_stdlib=False,
                      spool_dir=str(tmp_path / "spool"))  # fmt: skip
        yield running


def sql(server: RunningServer, text: str) -> list[tuple[Any, ...]]:
    assert opswatch.flush(10)
    return run_query(server.ctx.store, text).rows


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=["opswatch.integrations.django.OpswatchMiddleware"])
def test_a_django_view_continues_a_sampled_sentry_trace(server: RunningServer) -> None:
    assert Client().get("/pledges", HTTP_SENTRY_TRACE=f"{TRACE}-{CALLER}-1").status_code == 200
    rows = sql(server, f"SELECT name, kind, span_id, parent_span_id FROM spans WHERE trace_id = '{TRACE}' "
                       "ORDER BY kind")  # fmt: skip
    inner, request = rows
    assert (request[1], request[3]) == ("server", CALLER)
    assert (inner[0], inner[3]) == ("check pledge", request[2])


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=["opswatch.integrations.django.OpswatchMiddleware"])
def test_a_django_view_in_an_unsampled_sentry_trace_ships_no_span_but_logs_the_trace_id(
    server: RunningServer,
) -> None:
    # the head decides alone (with tail sampling the server would get the span, marked not sampled)
    opswatch.init(dsn=server.dsn, service="pledges", console=False, capture_stdlib=False, traces_tail_sampling=False)
    assert Client().get("/pledges", HTTP_SENTRY_TRACE=f"{TRACE}-{CALLER}-0").status_code == 200
    assert sql(server, "SELECT count(*) FROM spans") == [(0,)]
    assert sql(server, "SELECT trace_id FROM logs WHERE message = 'pledge checked'") == [(TRACE,)]
