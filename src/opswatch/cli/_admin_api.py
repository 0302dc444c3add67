"""The admin API, client side, for the commands that talk to a running server (projects, tail,
issues, crons, query).

``--url`` (default ``OPSWATCH_URL`` or http://127.0.0.1:8321) and the admin token from
``OPSWATCH_ADMIN_TOKEN`` (or ``--token``). Errors become a one-line ``CommandError``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx

from . import CommandError

DEFAULT_URL = "http://127.0.0.1:8321"
TIMEOUT = 15.0


def add_arguments(parser: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """``--url``, ``--token`` and ``--format``. ``inherited`` for a subcommand whose parent has them too:
    its defaults must not overwrite what was given before the subcommand's name."""
    suppress: dict[str, Any] = {"default": argparse.SUPPRESS} if inherited else {}
    parser.add_argument(
        "--url", help="the server (default: $OPSWATCH_URL or http://127.0.0.1:8321)", **suppress
    )
    parser.add_argument("--token", help="admin token (default: $OPSWATCH_ADMIN_TOKEN)", **suppress)
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        help="output format (default: table)",
        **({"default": "table"} | suppress),
    )


def client(args: argparse.Namespace) -> httpx.Client:
    """An HTTP client for the server named by ``args``, with the admin token."""
    url = (args.url or os.environ.get("OPSWATCH_URL") or DEFAULT_URL).rstrip("/")
    token = args.token or os.environ.get("OPSWATCH_ADMIN_TOKEN")
    if not token:
        raise CommandError(
            "no admin token: set OPSWATCH_ADMIN_TOKEN (opswatch serve prints it) or pass --token"
        )
    # trust_env=False: a proxy from the environment must not see the admin token, nor break 127.0.0.1.
    return httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT, trust_env=False
    )


def call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """``method path`` on the server; the JSON answer (None for an empty one), or ``CommandError`` with
    the server's reason."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.ConnectError as err:
        raise CommandError(
            f"cannot reach the server at {http.base_url} ({err}): start one with `opswatch serve` "
            "(or `opswatch demo`), or aim at yours with --url or OPSWATCH_URL"
        ) from None
    except httpx.HTTPError as err:
        raise CommandError(f"cannot reach the server at {http.base_url}: {err}") from None
    if response.status_code >= 400:
        detail = _detail(response)
        if response.status_code == 401:
            detail = "the admin token was refused (check OPSWATCH_ADMIN_TOKEN)"
        raise CommandError(f"{detail or response.reason_phrase} (HTTP {response.status_code})")
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise CommandError(f"the server at {http.base_url} did not answer JSON (is it opswatch?)") from None


def _detail(response: httpx.Response) -> str | None:
    """The reason in an error answer: ``{"detail": "..."}``, or FastAPI's list of validation errors."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return None
    if isinstance(detail, list):
        detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return str(detail) if detail else None
