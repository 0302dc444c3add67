"""Guessing the admin token is throttled per client, and logging out ends a session on the server."""

from __future__ import annotations

import datetime
import http.cookiejar as http_cookiejar
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opswatch.server import limits
from opswatch.server.testing import RunningServer, running_server
from opswatch.server.throttle import AuthThrottle
from opswatch.server.ui import session


class Clock:
    """The server's clock, moved by the test."""

    def __init__(self) -> None:
        self.moment = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.moment


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(tmp_path: Path, clock: Clock, state_url: str) -> Iterator[RunningServer]:
    """One per test (the throttle is per server); sessions kept on SQLite and on PostgreSQL."""
    with running_server(tmp_path, now=clock, database_url=state_url, leader_election="off") as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    no_cookies = http_cookiejar.CookieJar(policy=http_cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    with httpx.Client(timeout=30, trust_env=False, follow_redirects=False, cookies=no_cookies) as client:
        yield client


# -- the bucket ---------------------------------------------------------------------------------------


def test_it_lets_a_client_fail_a_burst_then_one_more_per_refill() -> None:
    now = [0.0]
    throttle = AuthThrottle(burst=3, refill_seconds=6.0, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 6
    assert throttle.retry_after("10.0.0.2") is None  # per client
    now[0] = 5.0
    assert throttle.retry_after("10.0.0.1") == 1
    now[0] = 6.0
    assert throttle.retry_after("10.0.0.1") is None
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 6


def test_it_remembers_a_bounded_number_of_clients() -> None:
    throttle = AuthThrottle(burst=1, max_clients=2, clock=lambda: 0.0)
    for client in ("a", "b", "c"):
        throttle.failed(client)
    assert throttle.retry_after("a") is None  # forgotten, the oldest
    assert throttle.retry_after("b") is not None and throttle.retry_after("c") is not None


# -- the server ---------------------------------------------------------------------------------------


def test_it_answers_429_after_too_many_wrong_logins_even_to_the_right_token(
    server: RunningServer, http: httpx.Client
) -> None:
    for _ in range(limits.AUTH_FAILURE_BURST):
        assert http.post(f"{server.url}/login", data={"token": "guess", "next": "/"}).status_code == 401
    refused = http.post(f"{server.url}/login", data={"token": server.admin_token, "next": "/"})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= limits.AUTH_FAILURE_REFILL_SECONDS
    assert session.COOKIE not in refused.cookies
    assert http.get(f"{server.url}/?token={server.admin_token}").status_code == 429


def test_it_answers_429_after_too_many_wrong_bearer_tokens(server: RunningServer, http: httpx.Client) -> None:
    wrong = {"Authorization": "Bearer guess"}
    for _ in range(limits.AUTH_FAILURE_BURST):
        assert http.get(f"{server.url}/api/0/issues", headers=wrong).status_code == 401
    refused = http.get(f"{server.url}/api/0/issues", headers=server.admin_headers)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert http.get(f"{server.url}/", headers=server.admin_headers).status_code == 429


def test_good_tokens_cost_nothing(server: RunningServer, http: httpx.Client) -> None:
    for _ in range(3 * limits.AUTH_FAILURE_BURST):
        assert http.get(f"{server.url}/api/0/issues", headers=server.admin_headers).status_code == 200


# -- sessions -----------------------------------------------------------------------------------------


def login(server: RunningServer, http: httpx.Client) -> str:
    answer = http.post(f"{server.url}/login", data={"token": server.admin_token, "next": "/"})
    assert answer.status_code == 303
    return str(answer.cookies[session.COOKIE])


def cookie_header(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{session.COOKIE}={cookie}"}


def logout(server: RunningServer, http: httpx.Client, cookie: str, **fields: str) -> None:
    html = http.get(f"{server.url}/", headers=cookie_header(cookie)).text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None, html[:500]
    answer = http.post(
        f"{server.url}/logout", data={"csrf": found.group(1), **fields}, headers=cookie_header(cookie)
    )
    assert answer.status_code == 303


def signed_in(server: RunningServer, http: httpx.Client, cookie: str) -> bool:
    answer = http.get(f"{server.url}/", headers=cookie_header(cookie))
    assert answer.status_code in (200, 303)
    return answer.status_code == 200


def test_a_cookie_stops_working_after_logout(server: RunningServer, http: httpx.Client) -> None:
    cookie = login(server, http)
    assert signed_in(server, http, cookie)
    logout(server, http, cookie)
    assert not signed_in(server, http, cookie)  # a copy of the cookie kept elsewhere is dead too


def test_log_out_everywhere_ends_every_session(
    server: RunningServer, http: httpx.Client, clock: Clock
) -> None:
    laptop = login(server, http)
    clock.moment += datetime.timedelta(seconds=10)
    phone = login(server, http)
    assert laptop != phone
    assert signed_in(server, http, laptop) and signed_in(server, http, phone)
    logout(server, http, phone, everywhere="1")
    assert not signed_in(server, http, laptop)
    assert not signed_in(server, http, phone)
    assert signed_in(server, http, login(server, http))


def test_a_signed_cookie_the_server_never_issued_is_refused(
    server: RunningServer, http: httpx.Client
) -> None:
    forged = session.new_session(server.admin_token, server.ctx.now().timestamp())
    assert not signed_in(server, http, forged)
