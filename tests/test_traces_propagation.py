"""Trace context across services: incoming ``traceparent``/``tracestate`` and Sentry's ``sentry-trace`` with
``baggage``, outgoing headers on httpx (sync, async) and requests calls to the propagation targets only,
each call a ``client`` span, and head sampling (``traces_sample_rate``, the caller's flag winning).

Outgoing calls go to real HTTP servers on 127.0.0.1 that record the headers they got; spans land in a
real opswatch server and are read back with SQL."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from fastapi import FastAPI

import opswatch
from opswatch._limits import MAX_BAGGAGE_CHARS, MAX_TRACESTATE_CHARS
from opswatch.integrations.asgi import OpswatchMiddleware
from opswatch.server.query import run_query
from opswatch.server.testing import RunningServer, running_server
from recording_http import TRACE_HEADERS, Recorder

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette 1.x suggests httpx2 for its test client
    from starlette.testclient import TestClient

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"


@pytest.fixture
def recorders() -> Iterator[tuple[Recorder, Recorder]]:
    inside, outside = Recorder(), Recorder()
    yield inside, outside
    inside.close()
    outside.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        yield running


def start(server: RunningServer, tmp_path: Path, **settings: Any) -> None:
    opswatch.init(dsn=server.dsn, service="donations-api", console=False, capture_stdlib=False,
                  spool_dir=str(tmp_path / "spool"), **settings)  # fmt: skip


def sql(server: RunningServer, text: str) -> list[tuple[Any, ...]]:
    assert opswatch.flush(10)
    return run_query(server.ctx.store, text).rows


def test_it_sends_trace_headers_to_a_target_and_none_elsewhere_from_httpx_and_requests(
    server: RunningServer, tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    inside, outside = recorders
    start(server, tmp_path, trace_propagation_targets=[inside.target])

    async def async_call(url: str) -> None:
        async with httpx.AsyncClient() as client:
            await client.get(url)

    with opswatch.span("sync job") as job:
        httpx.get(inside.origin + "/a?page=2")
        requests.get(inside.origin + "/b", timeout=5)
        asyncio.run(async_call(inside.origin + "/c"))
        httpx.get(outside.origin + "/d")
        requests.get(outside.origin + "/e", timeout=5)
    assert len(inside.seen) == 3 and len(outside.seen) == 2
    assert all(not set(TRACE_HEADERS) & set(headers) for headers in outside.seen)
    clients = sql(server, f"""SELECT span_id, parent_span_id, name, kind,
        attributes->>'$."url.full"', attributes->>'$."server.address"',
        attributes->'$."http.response.status_code"' FROM spans
        WHERE trace_id = '{job.trace_id}' AND kind = 'client' ORDER BY timestamp""")
    assert len(clients) == 5
    assert {row[1] for row in clients} == {job.span_id}
    assert clients[0][2:] == ("GET", "client", f"{inside.origin}/a?page=REDACTED", "127.0.0.1", "200")
    for headers, client in zip(inside.seen, clients[:3], strict=True):
        assert headers["traceparent"] == f"00-{job.trace_id}-{client[0]}-01"
        assert headers["sentry-trace"] == f"{job.trace_id}-{client[0]}-1"
        assert f"sentry-trace_id={job.trace_id}" in headers["baggage"]
        assert "sentry-sampled=true" in headers["baggage"]


def test_it_takes_the_headers_off_a_redirect_to_a_host_outside_the_targets(
    server: RunningServer, tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    inside, outside = recorders
    start(server, tmp_path, trace_propagation_targets=[inside.target])
    with opswatch.span("follow"):
        httpx.get(f"{inside.origin}/redirect?to={outside.origin}/landing", follow_redirects=True)
        requests.get(f"{inside.origin}/redirect?to={outside.origin}/landing", timeout=5)
    assert [("traceparent" in h) for h in inside.seen] == [True, True]
    assert len(outside.seen) == 2
    assert all(not set(TRACE_HEADERS) & set(headers) for headers in outside.seen)


def test_it_leaves_outgoing_calls_alone_without_targets(
    server: RunningServer, tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    inside, _ = recorders
    start(server, tmp_path)
    with opswatch.span("no targets") as job:
        httpx.get(inside.origin + "/a")
        requests.get(inside.origin + "/b", timeout=5)
    assert all(not set(TRACE_HEADERS) & set(headers) for headers in inside.seen)
    assert sql(server, f"SELECT name FROM spans WHERE trace_id = '{job.trace_id}'") == [("no targets",)]


def test_it_marks_a_client_span_with_an_error_status_as_an_error(
    server: RunningServer, tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    inside, _ = recorders
    start(server, tmp_path, trace_propagation_targets=[inside.target])
    with opswatch.span("lookup") as job:
        httpx.get(inside.origin + "/missing")
    rows = sql(server, f"""SELECT status, attributes->'$."http.response.status_code"' FROM spans
        WHERE trace_id = '{job.trace_id}' AND kind = 'client'""")
    assert rows == [("error", "404")]


def app_calling(url: str) -> FastAPI:
    app = FastAPI()
    app.add_middleware(OpswatchMiddleware)

    @app.get("/checkout")
    async def checkout() -> dict[str, bool]:
        async with httpx.AsyncClient() as client:
            await client.get(url)
        opswatch.logger.info("checked out")
        return {"ok": True}

    return app


def test_it_continues_a_sentry_trace_and_forwards_its_baggage(
    server: RunningServer, tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    inside, _ = recorders
    start(server, tmp_path, trace_propagation_targets=[inside.target])
    baggage = "other=1,sentry-trace_id=" + TRACE + ",sentry-public_key=abc,sentry-sample_rate=0.5"
    with TestClient(app_calling(inside.origin + "/pay")) as client:
        client.get("/checkout", headers={"sentry-trace": f"{TRACE}-{CALLER}-1", "baggage": baggage})
    request = sql(server, f"SELECT span_id, parent_span_id FROM spans WHERE trace_id = '{TRACE}' "
                          "AND kind = 'server'")  # fmt: skip
    assert [row[1] for row in request] == [CALLER]
    (headers,) = inside.seen
    assert headers["traceparent"].startswith(f"00-{TRACE}-") and headers["traceparent"].endswith("-01")
    assert headers["baggage"] == f"sentry-trace_id={TRACE},sentry-public_key=abc,sentry-sample_rate=0.5"
    assert sql(server, "SELECT trace_id FROM logs WHERE message = 'checked out'") == [(TRACE,)]


def test_it_forwards_the_callers_tracestate_up_to_the_limit(
    server: RunningServer, tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    inside, _ = recorders
    start(server, tmp_path, trace_propagation_targets=[inside.target])
    at_limit = "vendor=" + "x" * (MAX_TRACESTATE_CHARS - len("vendor="))
    with TestClient(app_calling(inside.origin + "/pay")) as client:
        for state in (at_limit, at_limit + "x"):
            client.get("/checkout", headers={"traceparent": f"00-{TRACE}-{CALLER}-01", "tracestate": state})
    assert [headers.get("tracestate") for headers in inside.seen] == [at_limit, None]


def test_an_unsampled_trace_ships_no_spans_but_its_logs_carry_the_trace_id(
    server: RunningServer, tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    inside, _ = recorders
    start(server, tmp_path, traces_sample_rate=0.0, trace_propagation_targets=[inside.target],
          traces_tail_sampling=False)  # fmt: skip
    with opswatch.span("not kept") as job:
        opswatch.track_query("donations.find", lambda: None)
        httpx.get(inside.origin + "/a")
        opswatch.logger.info("inside an unsampled trace")
    assert job.sampled is False
    assert inside.seen[0]["traceparent"].startswith(f"00-{job.trace_id}-")
    assert inside.seen[0]["traceparent"].endswith("-00")
    assert "sentry-sampled=false" in inside.seen[0]["baggage"]
    assert sql(server, "SELECT trace_id FROM logs WHERE message = 'inside an unsampled trace'") == [
        (job.trace_id,)
    ]
    assert sql(server, "SELECT count(*) FROM spans") == [(0,)]


@pytest.mark.parametrize(
    ("rate", "flags", "kept"), [(0.0, "01", True), (1.0, "00", False), (0.0, None, False), (1.0, None, True)]
)
def test_the_callers_sampled_flag_wins_over_the_rate(
    server: RunningServer, tmp_path: Path, recorders: tuple[Recorder, Recorder], rate: float,
    flags: str | None, kept: bool,
) -> None:  # fmt: skip
    start(server, tmp_path, traces_sample_rate=rate, traces_tail_sampling=False)  # the head decides alone
    headers = {"traceparent": f"00-{TRACE}-{CALLER}-{flags}"} if flags else {}
    with TestClient(app_calling(recorders[0].origin + "/pay")) as client:
        client.get("/checkout", headers=headers)
    assert sql(server, "SELECT count(*) FROM spans WHERE kind = 'server'") == [(1 if kept else 0,)]


def test_bad_propagation_settings_are_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(opswatch.ConfigError, match=r"trace_propagation_targets.*not a valid regular"):
        opswatch.init(console=False, trace_propagation_targets=["api.(internal"])
    with pytest.raises(opswatch.ConfigError, match=r"traces_sample_rate.*from 0 to 1"):
        opswatch.init(console=False, traces_sample_rate=1.5)
    monkeypatch.setenv("OPSWATCH_TRACES_SAMPLE_RATE", "half")
    with pytest.raises(opswatch.ConfigError, match="OPSWATCH_TRACES_SAMPLE_RATE"):
        opswatch.init(console=False)
    monkeypatch.setenv("OPSWATCH_TRACES_SAMPLE_RATE", "0.25")
    monkeypatch.setenv("OPSWATCH_TRACE_PROPAGATION_TARGETS", r"^https://api\.internal$, localhost")
    settings = opswatch.init(console=False, capture_stdlib=False)
    assert settings.traces_sample_rate == 0.25
    assert settings.trace_propagation_targets == (r"^https://api\.internal$", "localhost")


def test_a_client_span_keeps_no_credentials_or_query_values_of_the_url(
    server: RunningServer, tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    inside, _ = recorders
    start(server, tmp_path, trace_propagation_targets=[inside.target])
    secret_url = inside.origin.replace("http://", "http://alice:pa55word@") + "/a?api_key=k3y-value&q=jane"
    with opswatch.span("call") as job:
        httpx.get(secret_url)
        requests.get(secret_url, timeout=5)
    rows = sql(server, f"SELECT attributes FROM spans WHERE trace_id = '{job.trace_id}' AND kind = 'client'")
    assert len(rows) == 2
    for (attributes,) in rows:
        text = str(attributes)
        assert "pa55word" not in text and "alice" not in text and "k3y-value" not in text and "jane" not in text
        assert f"{inside.origin}/a?" in text


def test_it_reads_the_callers_sentry_baggage_up_to_the_limit(
    server: RunningServer, tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    inside, _ = recorders
    start(server, tmp_path, trace_propagation_targets=[inside.target])
    items = f"sentry-trace_id={TRACE},sentry-public_key=abc"
    at_limit = items + ",other=" + "x" * (MAX_BAGGAGE_CHARS - len(items) - len(",other="))
    with TestClient(app_calling(inside.origin + "/pay")) as client:
        for baggage in (at_limit, at_limit + "x"):
            client.get("/checkout", headers={"sentry-trace": f"{TRACE}-{CALLER}-1", "baggage": baggage})
    forwarded, ignored = (headers["baggage"] for headers in inside.seen)
    assert forwarded == items
    assert ignored.startswith(f"sentry-trace_id={TRACE},sentry-sample_rate=1,") and "public_key" not in ignored
