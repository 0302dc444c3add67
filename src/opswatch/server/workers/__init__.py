"""``opswatch serve --workers N``: N processes take HTTP, one process owns the embedded stores.

DuckDB allows one writing process, and one Python process answers about 1,000 Sentry error events/s
before the GIL stops it; most of that time is per-event work that needs no store (HTTP, decompression,
envelope parsing, redaction). So with ``--workers N`` (``OPSWATCH_WORKERS``, N > 1):

* **the owner** (the process ``opswatch serve`` started) opens the stores, installs every subsystem,
  runs the committer, the hooks (issues, monitors) and the background singletons (cron clock, rules,
  retention, notifications), and serves one private channel per worker (``owner``); it does not accept
  HTTP itself;
* **N workers** accept connections on the listening socket the owner bound (inherited, so the kernel
  spreads connections over them), do the per-event work of the ingest endpoints and hand the redacted
  records to the owner in batches; they answer 2xx only when the owner says the group commit holding
  them is durable (``worker``). Every other request (API, dashboard, query, pings, OTLP) is forwarded
  whole to the owner's app, so there is one copy of every cache and singleton.

N = 1 is the single process of before, unchanged. Workers that die are started again; SIGTERM on the
owner drains the workers first, then commits what is queued: nothing acknowledged is lost either way.
"""

from __future__ import annotations

import socket
from typing import Any

from ..context import ServerContext
from .owner import Owner


def serve_with_workers(ctx: ServerContext, app: Any, listen: socket.socket) -> int:
    """Run ``ctx.settings.workers`` workers on ``listen`` for ``app`` until SIGTERM/SIGINT; exit code."""
    return Owner(ctx, app, listen, ctx.settings.workers).run()


__all__ = ["Owner", "serve_with_workers"]
