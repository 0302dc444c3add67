"""Helpers for the server and ingest tests: a named cast of records, senders, and reading the store back.

Tests talk to a real server (``opswatch.server.testing.running_server``) over real HTTP and read what
landed through the store's public methods.
"""

from __future__ import annotations

import atexit
import functools
import gzip
import itertools
import time
from collections.abc import Iterable
from typing import Any

import httpx
import orjson

from opswatch.record import format_timestamp
from opswatch.server.testing import RunningServer

_ids = itertools.count(1)


@functools.cache
def http() -> httpx.Client:
    """One client for every test in the process (making a client costs tens of milliseconds)."""
    client = httpx.Client(timeout=30)
    atexit.register(client.close)
    return client


def donation(**fields: Any) -> dict[str, Any]:
    """The donations service logs a completed donation (the seed's business metric)."""
    number = next(_ids)
    record = {
        "timestamp": format_timestamp(time.time()),
        "level": "info",
        "logger": "donations",
        "message": "Donation completed",
        "event_id": f"{number:032x}",
        "service": "donations-api",
        "environment": "production",
        "operation": "metrics.donation.completed",
        "church_id": "church_7",
        "amount": 125.5,
    }
    record.update(fields)
    return record


def ndjson(records: Iterable[Any]) -> bytes:
    """One JSON line per record (values that are bytes already are sent as they are)."""
    return b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records)


def post_native(
    server: RunningServer,
    records: Iterable[Any] | bytes,
    *,
    gzipped: bool = False,
    key: str | None = None,
    project: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a native batch to ``server``'s default project (or ``project``) with its key (or ``key``;
    an empty ``key`` sends no Authorization header)."""
    body = records if isinstance(records, bytes) else ndjson(records)
    sent = {"Authorization": f"Bearer {server.key if key is None else key}"} if key != "" else {}
    if gzipped:
        body = gzip.compress(body)
        sent["Content-Encoding"] = "gzip"
    sent.update(headers or {})
    url = f"{server.url}/api/{server.project_id if project is None else project}/events/"
    return http().post(url, content=body, headers=sent)


def stored(server: RunningServer, **filters: Any) -> list[dict[str, Any]]:
    """Every record in the store (oldest first), through the store's ``tail``."""
    records: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = server.ctx.store.tail(cursor, limit=1000, **filters)
        records.extend(page.records)
        if not page.records:
            return records
        cursor = page.cursor


def stored_by_id(server: RunningServer) -> dict[str, dict[str, Any]]:
    """The store's records by event id."""
    return {r["event_id"]: r for r in stored(server)}


def create_monitor(server: RunningServer, slug: str) -> None:
    """Create ``slug`` in the server's project through the monitor API, as ``opswatch crons create`` does.

    Pings name no schedule, so a ping for a monitor that does not exist is answered 404.
    """
    answer = http().post(
        f"{server.url}/api/0/monitors",
        json={"slug": slug, "project": server.project_id, "config": {"schedule": "@daily"}},
        headers=server.admin_headers,
    )
    assert answer.status_code == 201, answer.text


def issues(server: RunningServer) -> list[dict[str, Any]]:
    """Every issue of the server, whatever its status (``GET /api/0/issues``)."""
    answer = http().get(
        f"{server.url}/api/0/issues", params={"status": "all", "limit": 500}, headers=server.admin_headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]
