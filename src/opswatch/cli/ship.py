"""``opswatch ship``: send the JSON lines a program writes (pino's, or any NDJSON logger's) to a server.

    node app.js | opswatch ship                        # OPSWATCH_DSN=http://<key>@host:8321/1
    node app.js | opswatch ship --dsn http://<key>@127.0.0.1:8321/1 --no-echo

It is the SDK's own server transport with standard input as its source: lines are batched (1,000 lines
or 1 s), gzipped and posted to the native endpoint, and wait in the disk spool while the server is down
(``OPSWATCH_SPOOL_DIR``, replayed by the next run). Each line is redacted with the SDK's rules before it
leaves this process; the server reads pino's line shape as it is (``opswatch.server.ingest.pino``). A
line that is not a JSON object is shipped as an ``info`` record with the line as its message. Lines are
echoed to standard output unless ``--no-echo``, so the program's log still reaches the terminal or
journal.

Unlike the SDK inside an app, this command may wait: when its queue is full it stops reading until the
server caught up, so the program writing into the pipe slows down rather than losing lines. At the end of
input it delivers what it can within ``--timeout`` seconds, spools the rest, and says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, Any

import orjson

from .._runtime import Runtime
from ..config import ConfigError, Settings
from ..record import format_timestamp
from ..redact import Redactor
from ..sinks.server import ServerSink, from_settings
from . import CommandError

#: Numeric fields of the line's structure, shipped as they are (never the caller's data).
_STRUCTURAL = ("time", "level")


def register(subparsers: Any) -> None:
    """Add ``ship``."""
    parser = subparsers.add_parser(
        "ship", help="send JSON log lines from standard input (pino ...) to a server"
    )
    parser.add_argument("--dsn", help="where to send (default: OPSWATCH_DSN)")
    parser.add_argument(
        "--no-echo", dest="echo", action="store_false", help="do not copy the lines to standard output"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to deliver what is left at the end (default 10)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Ship standard input; 0 when everything was delivered, 1 when some of it waits in the spool."""
    try:
        settings = Settings.load(**({"dsn": args.dsn} if args.dsn else {}))
        sink = from_settings(settings)
    except ConfigError as err:
        raise CommandError(str(err)) from None
    if sink is None:
        raise CommandError("no server to ship to: pass --dsn or set OPSWATCH_DSN (printed by opswatch serve)")
    try:
        redactor = Runtime(settings, []).redactor
        lines = ship(sys.stdin.buffer, sink, redactor, sys.stdout.buffer if args.echo else None)
    finally:
        delivered = sink.flush(args.timeout)
        sink.close(0.0)
    left = "" if delivered else "; what was not delivered waits in the spool for the next run"
    print(f"opswatch ship: {lines:,} lines read{left}", file=sys.stderr)
    return 0 if delivered else 1


def ship(source: IO[bytes], sink: ServerSink, redactor: Redactor, echo: IO[bytes] | None = None) -> int:
    """Queue every non-blank line of ``source`` on ``sink``, redacted; returns how many were queued."""
    count = 0
    for line in source:
        if echo is not None:
            echo.write(line)
            echo.flush()
        if not line.strip():
            continue
        while sink.stats()["queued"] >= sink.max_queue:
            sink.flush(1.0)  # let the server catch up rather than drop lines
        record = _record(line)
        # pino's epoch-millisecond ``time`` is 13 digits, a card number's shape: it is not the caller's data.
        kept = {key: record.pop(key) for key in _STRUCTURAL if type(record.get(key)) in (int, float)}
        sink.write({**redactor.redact(record), **kept})
        count += 1
    return count


def _record(line: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    return {"level": "info", "message": text, "timestamp": format_timestamp(time.time())}
