"""Who may see the dashboard, and the CSRF check on what changes state.

Every page needs the admin token (``OPSWATCH_ADMIN_TOKEN``), given one of three ways:

* ``Authorization: Bearer <token>`` on the request (scripts, ``curl``, tests);
* the session cookie ``opswatch_session``, set by the login form (``POST /login``), HttpOnly and
  ``SameSite=Strict``; its value is ``<issued>.<signature>``, an HMAC-SHA256 of the issue time keyed by
  the admin token, so it holds no secret, expires after ``SESSION_MAX_AGE`` and dies when the token is
  rotated;
* ``?token=<token>`` on any page, once: the answer sets the cookie and redirects to the same page
  without the token, so the token does not stay in the address bar or the history (``opswatch demo``
  prints such a link; browser tests use it).

Forms that change state (resolve, ignore, reopen, pause, edit a monitor, run a query, log out) are
POSTs that carry ``csrf``, an HMAC of the session cookie, checked server-side. On top of that,
``same_origin`` refuses a form that the browser says came from another site: by its ``Origin`` header,
and where that is ``null`` (a sandboxed frame, a page with ``Referrer-Policy: no-referrer``) by
``Sec-Fetch-Site``. The dashboard's pages send ``Referrer-Policy: same-origin``, so browsers put the
page's real origin on its own forms and no referrer on links to other sites. Requests authenticated by
the Bearer header need no CSRF token: browsers never add that header by themselves. Tokens and
signatures are compared in constant time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time
import urllib.parse
from collections.abc import Iterable
from typing import Final, Literal

#: The session cookie's name and lifetime.
COOKIE: Final = "opswatch_session"
SESSION_MAX_AGE: Final = 7 * 24 * 3600
#: A cookie issued this far in the future (clock skew) is still accepted.
_FUTURE_SKEW: Final = 300


@dataclasses.dataclass(frozen=True)
class Viewer:
    """Someone who showed the admin token: how (``bearer`` or ``cookie``) and their CSRF token."""

    via: Literal["bearer", "cookie"]
    csrf: str


def _sign(token: str, message: str) -> str:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def token_matches(given: str | None, token: str) -> bool:
    """Whether ``given`` is the admin token (constant time; an empty token never matches)."""
    if not given or not token:
        return False
    return secrets.compare_digest(given.strip().encode(), token.encode())


def new_session(token: str, now: float | None = None) -> str:
    """A session cookie value issued at ``now`` (epoch seconds)."""
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_sign(token, f'session:{issued}')}"


def session_valid(value: str | None, token: str, now: float | None = None) -> bool:
    """Whether ``value`` is a session cookie this token signed, and not expired."""
    if not value or not token or len(value) > 200:
        return False
    issued_text, _, signature = value.partition(".")
    if not (issued_text.isascii() and issued_text.isdigit()):  # "²".isdigit() is true
        return False
    issued = int(issued_text)
    current = time.time() if now is None else now
    if not current - SESSION_MAX_AGE <= issued <= current + _FUTURE_SKEW:
        return False
    return secrets.compare_digest(signature.encode(), _sign(token, f"session:{issued}").encode())


def csrf_token(token: str, session: str | None) -> str:
    """The CSRF token of a session (a fixed one for Bearer viewers, whose requests need none)."""
    return _sign(token, f"csrf:{session or 'bearer'}")


def csrf_valid(given: str | None, token: str, session: str | None) -> bool:
    """Whether ``given`` is the CSRF token of ``session``."""
    if not given or not session:
        return False
    return secrets.compare_digest(given.encode(), csrf_token(token, session).encode())


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None for any other header."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def safe_next(path: str | None) -> str:
    """Where to go after logging in: a local path (``/issues/3``), else ``/``."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or len(path) > 2000:
        return "/"
    if any(ord(ch) < 32 for ch in path):
        return "/"
    return path


def same_origin(origin: str | None, fetch_site: str | None, own_hosts: Iterable[str]) -> bool:
    """Whether a form may have come from the dashboard itself, by what the browser says.

    ``origin`` is the ``Origin`` header: a real origin must name one of ``own_hosts`` (``host:port``;
    the scheme is not compared, so a TLS proxy in front does not refuse the server's own forms).
    ``null`` or no ``Origin`` defers to ``fetch_site`` (``Sec-Fetch-Site``): ``same-origin`` and
    ``none`` (a request the user started, not a page) pass, ``cross-site`` and ``same-site`` (another
    port or subdomain) do not; ``null`` without it is refused. A request with neither header is not
    from a browser (``curl``, a script) and passes: the CSRF token still guards cookie sessions.
    """
    if origin is not None and origin.strip().lower() != "null":
        host = urllib.parse.urlsplit(origin.strip()).netloc.lower()
        return bool(host) and host in {own.lower() for own in own_hosts if own}
    if fetch_site is not None:
        return fetch_site.strip().lower() in ("same-origin", "none")
    return origin is None
