"""``opswatch tail``: the latest events of a running server, and with ``-f`` every new one as it lands.

    opswatch tail                                   # the last 20 events
    opswatch tail --level error -f                  # errors and fatals, following
    opswatch tail --operation 'payment.*' --text card -n 50

Filters: ``--level`` (that level and above), ``--operation`` (exact, or a prefix with ``*``), ``--text``
(in the message, any case), ``--kind``, ``--project``. Reads ``GET /api/0/events`` (``--url``,
``OPSWATCH_ADMIN_TOKEN``); ``--format json`` prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import orjson

from ..record import LEVEL_NUMBERS
from . import CommandError
from ._admin_api import add_arguments, call, client
from ._output import clean_tree, json_text

#: Fields the store adds that a person reading the tail does not need on every line.
_SERVER_FIELDS = ("project_id", "received_at", "event_id", "host", "pid", "service", "environment", "release")


def register(subparsers: Any) -> None:
    """Add ``tail``."""
    parser = subparsers.add_parser("tail", help="show the latest events; -f follows new ones")
    parser.add_argument("--level", help="this level and above: trace, debug, info, warn, error, fatal")
    parser.add_argument("--operation", help="exact operation, or a prefix ending in * (payment.*)")
    parser.add_argument("--text", help="text in the message (any case)")
    parser.add_argument("--kind", help="log, error, check_in, transaction, state_change ...")
    parser.add_argument("--project", type=int, help="only this project id")
    parser.add_argument(
        "-n", "--lines", type=int, default=20, help="how many recent events first (default 20)"
    )
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls with -f")
    add_arguments(parser)
    parser.set_defaults(handler=tail)


def tail(args: argparse.Namespace) -> int:
    """Print the latest events, then (with ``--follow``) poll for new ones until interrupted."""
    if args.level is not None and args.level.lower() not in LEVEL_NUMBERS:
        raise CommandError(f"unknown level {args.level!r} (trace, debug, info, warn, error, fatal)")
    if not 1 <= args.lines <= 1000:
        raise CommandError("--lines must be 1 to 1000")
    if args.interval <= 0:
        raise CommandError("--interval must be positive")
    params: dict[str, Any] = {
        key: value
        for key, value in (
            ("level", args.level),
            ("operation", args.operation),
            ("text", args.text),
            ("kind", args.kind),
            ("project", args.project),
        )
        if value is not None
    }
    color = args.format != "json" and sys.stdout.isatty()
    with client(args) as http:
        page = call(http, "GET", "/api/0/events", params={**params, "limit": args.lines})
        _print(page["events"], args.format, color)
        cursor = page["cursor"]
        while args.follow:
            time.sleep(args.interval)
            page = call(http, "GET", "/api/0/events", params={**params, "after": cursor, "limit": 1000})
            _print(page["events"], args.format, color)
            cursor = page["cursor"]
    return 0


def _print(events: list[dict[str, Any]], fmt: str, color: bool) -> None:
    from ..sinks.console import render_pretty

    out = sys.stdout
    for event in events:
        if fmt == "json":
            out.write(json_text(orjson.dumps(event).decode()) + "\n")
        else:
            shown = clean_tree({k: v for k, v in event.items() if k not in _SERVER_FIELDS})
            if shown.get("kind") == "log":
                shown.pop("kind")
            out.write(render_pretty(shown, color))
    out.flush()
