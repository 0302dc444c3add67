"""``opswatch serve``: run the server (ingest, store, API) until interrupted.

Settings: ``--host``, ``--port``, ``--data-dir`` > ``OPSWATCH_HOST``/``OPSWATCH_PORT``/``OPSWATCH_DATA_DIR``
> 127.0.0.1:8321 and ./opswatch-data (see ``opswatch.server.config``). At start it prints where it
listens, the admin token and the default project's DSN; Ctrl-C (or SIGTERM) stops it gracefully,
committing everything acknowledged.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import CommandError


def register(subparsers: Any) -> None:
    """Add ``serve``."""
    parser = subparsers.add_parser("serve", help="run the opswatch server")
    parser.add_argument("--host", help="interface to bind (default: $OPSWATCH_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $OPSWATCH_PORT or 8321)")
    parser.add_argument(
        "--data-dir", help="where the stores live (default: $OPSWATCH_DATA_DIR or ./opswatch-data)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="HTTP worker processes beside the store's owner (default: $OPSWATCH_WORKERS or 1)",
    )
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    """Start the server and block until it stops; returns the exit code."""
    try:
        import uvicorn

        from ..server import gc_tuning
        from ..server.app import create_app
        from ..server.config import ServerSettings
        from ..server.context import open_context
        from ..server.serving import uvicorn_config
    except ModuleNotFoundError as err:
        raise CommandError(
            f"the server needs its extra: pip install 'opswatch[server]' ({err.name} missing)"
        ) from None
    import opswatch

    from ..config import ConfigError

    check_data_dir(args.data_dir, os.environ.get("OPSWATCH_DATA_DIR"), ServerSettings.data_dir)
    try:
        settings = ServerSettings.load(
            host=args.host, port=args.port, data_dir=args.data_dir, workers=getattr(args, "workers", None)
        )
    except ConfigError as err:
        raise CommandError(str(err)) from None
    # The server logs to its console; it never ships its own records to itself, even when the shell
    # exports an OPSWATCH_DSN meant for the apps.
    opswatch.init(service="opswatch-server", dsn=None)
    sock = _listen(settings.host, settings.port, reuse_port=settings.workers > 1)
    try:
        ctx = open_context(settings)
        app = create_app(ctx)
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    if port != settings.port:  # --port 0: the system chose one
        settings = dataclasses.replace(settings, port=port)
        ctx.settings = settings
    key = ctx.default_project.keys[0].key
    out = sys.stdout
    out.write(
        f"opswatch {opswatch.__version__} listening on {settings.base_url} (data in {settings.data_dir})\n"
    )
    out.write(f"OPSWATCH_ADMIN_TOKEN={settings.admin_token}\n")
    out.write(f"OPSWATCH_DSN={settings.dsn(key, ctx.default_project.id)}\n")
    out.flush()
    if settings.workers > 1:  # the owner keeps the stores; workers take HTTP (opswatch.server.workers)
        from ..server.workers import serve_with_workers

        gc_tuning.tune()
        try:
            return serve_with_workers(ctx, app, sock)
        finally:
            sock.close()
    config = uvicorn_config(app, settings)
    server = uvicorn.Server(config)
    gc_tuning.tune()  # the app is built: freeze it out of the collector's way (gc_tuning.py)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal to the handlers that were
    # there before it ran. Ours only note it, so a graceful stop ends with exit code 0.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        ctx.close()
    return 0 if server.started else 1


def check_data_dir(given: str | os.PathLike[str] | None, environ: str | None, default: Path) -> None:
    """Make sure the data directory (``--data-dir`` > ``OPSWATCH_DATA_DIR`` > the default) is a directory
    this process can write, creating it if missing; else ``CommandError`` naming it and the fix."""
    if given:
        path, source = Path(given), "--data-dir"
    elif environ:
        path, source = Path(environ), "OPSWATCH_DATA_DIR"
    else:
        path, source = default, "the default data dir"
    path = path.expanduser()
    fix = "pass --data-dir (or set OPSWATCH_DATA_DIR to) a directory you can write"
    if path.exists() and not path.is_dir():
        raise CommandError(f"data dir {path} ({source}) is a file, not a directory: {fix}")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: it holds the ingest keys
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        problem = err.strerror or str(err)
        raise CommandError(f"data dir {path} ({source}) cannot be written ({problem}): {fix}") from None


def _listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket on ``host:port``, or ``CommandError`` saying why not. ``reuse_port``: the
    workers' sockets will bind the same port (``opswatch.server.workers``)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise CommandError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    family, kind, _proto, _, address = infos[0]
    # IPPROTO_TCP said explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it an answer written in two parts waits for a delayed ACK (~40 ms).
    sock = socket.socket(family, kind, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise CommandError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock.set_inheritable(True)
    return sock
