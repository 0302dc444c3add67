"""Talking to the dashboard over HTTP as a viewer: a client that keeps no cookies, the form login,
the session header and the page's CSRF token (shared by the ``test_dashboard*`` modules)."""

from __future__ import annotations

import contextlib
import http.cookiejar as http_cookiejar
import re
from collections.abc import Iterator

import httpx

from opswatch.server.testing import RunningServer
from opswatch.server.ui import session


@contextlib.contextmanager
def cookieless_client() -> Iterator[httpx.Client]:
    """A client that keeps no cookies: each request says who it is (or not) itself."""
    no_cookies = http_cookiejar.CookieJar(policy=http_cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    with httpx.Client(timeout=30, trust_env=False, follow_redirects=False, cookies=no_cookies) as client:
        yield client


def signed_in(cookie: str) -> dict[str, str]:
    """Headers carrying the session cookie."""
    return {"Cookie": f"{session.COOKIE}={cookie}"}


def login(server: RunningServer, http: httpx.Client) -> str:
    """Log in with the form; the session cookie's value."""
    answer = http.post(f"{server.url}/login", data={"token": server.admin_token, "next": "/"})
    assert answer.status_code == 303
    return str(answer.cookies[session.COOKIE])


def csrf_of(html: str) -> str:
    """The CSRF token of the page's forms."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)
