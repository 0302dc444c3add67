"""``opswatch demo``: the server plus a simulated church-management app, so a newcomer sees it all work.

One process: the server (the same app ``opswatch serve`` runs) listens in a thread, and the simulated
app (``opswatch.cli._church_app``) sends to it through its DSN with the real SDK, from its own threads:
donations and campaign metrics, slow queries, card declines and database timeouts that group into
issues, a heartbeat cron job every 10 seconds that sometimes fails, and one job that goes missed. Its
alert rules (``_demo_alerts``) see an error-rate spike and a quiet spell without donations go pending,
fire and resolve within the first four minutes.

It prints the dashboard's address with a one-time ``?token=`` login, the admin token and the DSN, then
runs until Ctrl-C (or ``--duration`` seconds). The data lives in a temporary directory that is removed
at the end, unless ``--data-dir`` names one. The demo never reads the data directory, database or
notification settings of the environment (a real server's data and a team's Slack channel stay out
of it); ``--slack-webhook-url`` / ``--webhook-url`` send its alerts somewhere on purpose.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final

from . import CommandError, _demo_alerts

#: Environment variables the demo's server reads (the rest of the server's settings keep defaults).
_ENVIRONMENT: Final = ("OPSWATCH_HOST", "OPSWATCH_PORT", "OPSWATCH_ADMIN_TOKEN")
#: Seconds between the app's one-line summaries.
SUMMARY_EVERY: Final = 15.0


def register(subparsers: Any) -> None:
    """Add ``demo``."""
    parser = subparsers.add_parser(
        "demo", help="run the server with a simulated app sending to it (see the dashboard at once)"
    )
    add = parser.add_argument
    add("--host", help="interface to bind (default: $OPSWATCH_HOST or 127.0.0.1)")
    add("--port", type=int, help="port (default: $OPSWATCH_PORT or 8321; 0 picks a free one)")
    add("--data-dir", help="keep the data here (default: a temporary directory, removed at exit)")
    add("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    add("--no-app", action="store_true", help="run only the server, without the simulated app")
    add("--seed", type=int, help="seed the simulated app's random choices")
    add("--slack-webhook-url", help="post the server's alerts (new issues, failing jobs) to Slack")
    add("--webhook-url", help="post the server's alerts as JSON to this webhook")
    # Tests: run the alert story (spike, quiet spell, the demo rules' windows) this many times faster.
    add("--time-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.set_defaults(handler=demo)


def demo(args: argparse.Namespace) -> int:
    """Run the demo until it is stopped; returns the exit code."""
    try:
        import uvicorn

        from ..server.app import create_app
        from ..server.config import ServerSettings
        from ..server.context import open_context
        from ..server.serving import uvicorn_config
    except ModuleNotFoundError as err:
        raise CommandError(
            f"the demo needs the server extra: pip install 'opswatch[server]' ({err.name} missing)"
        ) from None
    import opswatch

    from ..config import ConfigError
    from .serve import _listen, check_data_dir

    if args.duration is not None and args.duration <= 0:
        raise CommandError("--duration: expected a number of seconds above 0")
    if not 0.1 <= args.time_scale <= 100:
        raise CommandError("--time-scale: expected a factor from 0.1 to 100")
    temporary = args.data_dir is None
    if not temporary:
        check_data_dir(args.data_dir, None, Path(args.data_dir))
    data_dir = Path(tempfile.mkdtemp(prefix="opswatch-demo-")) if temporary else Path(args.data_dir)
    try:
        environ = {name: os.environ[name] for name in _ENVIRONMENT if os.environ.get(name)}
        try:
            settings = ServerSettings.load(
                environ=environ,
                host=args.host,
                port=args.port,
                data_dir=data_dir,
                slack_webhook_url=args.slack_webhook_url,
                alert_webhook_url=args.webhook_url,
                **({} if args.no_app else _demo_alerts.server_settings(data_dir, args.time_scale)),
            )
        except ConfigError as err:
            raise CommandError(str(err)) from None
        _quiet_sdk(opswatch)
        sock = _listen(settings.host, settings.port)
        try:
            ctx = open_context(settings)
            app = create_app(ctx)
        except BaseException:
            sock.close()
            raise
        port = sock.getsockname()[1]
        if port != settings.port:
            settings = dataclasses.replace(settings, port=port)
            ctx.settings = settings
        config = uvicorn_config(app, settings)
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="opswatch-demo-server", daemon=True
        )
        try:
            thread.start()
            if not _wait_started(server, thread):
                raise CommandError("the demo server did not start")
            _banner(settings, ctx.default_dsn, data_dir, temporary, args)
            started = time.monotonic()
            _run(opswatch, ctx.default_dsn, data_dir, args)
            print(_closing_summary(settings, time.monotonic() - started, data_dir, temporary), flush=True)
        finally:
            server.should_exit = True
            thread.join(30)
            sock.close()
            ctx.close()
    finally:
        opswatch.shutdown(timeout=2.0)
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def _quiet_sdk(opswatch: Any) -> None:
    """The SDK for the demo process itself: its warnings on the console, never to a DSN, Sentry or Slack
    that the shell exports."""
    opswatch.init(
        service="opswatch-demo", level="warn", dsn=None, sentry_enabled=False, alerts_enabled=False
    )


def _wait_started(server: Any, thread: threading.Thread, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _banner(settings: Any, dsn: str, data_dir: Path, temporary: bool, args: argparse.Namespace) -> None:
    import opswatch

    where = f"{data_dir}, removed at exit" if temporary else str(data_dir)
    what = "the server" if args.no_app else "the server and a simulated church-management app"
    url, token = settings.base_url, settings.admin_token
    out = sys.stdout
    out.write(f"opswatch demo: {what}\n")
    out.write(f"opswatch {opswatch.__version__} listening on {url} (data in {where})\n")
    out.write(f"dashboard: {url}/?token={token}\n")
    out.write("Aim the CLI at it from another shell (or pass --url and --token):\n")
    out.write(f"  export OPSWATCH_URL={url}\n")
    out.write(f"  export OPSWATCH_ADMIN_TOKEN={token}\n")
    out.write("Apps send to it with:\n")
    out.write(f"  export OPSWATCH_DSN={dsn}\n")
    if not args.no_app:
        out.write(_demo_alerts.announcement(_demo_alerts.Scenario().scaled(args.time_scale)) + "\n")
    if args.duration is None:
        out.write("Press Ctrl-C to stop.\n")
    else:
        out.write(f"Stops after {args.duration:g} seconds.\n")
    out.flush()


def _closing_summary(settings: Any, elapsed: float, data_dir: Path, temporary: bool) -> str:
    """One line at the end: how long it ran, what the server holds, and where the data went."""
    import httpx

    kept = "removed" if temporary else f"kept in {data_dir}"
    line = f"opswatch demo: stopped after {elapsed:.0f} s"
    headers = {"Authorization": f"Bearer {settings.admin_token}"}
    try:
        with httpx.Client(base_url=settings.base_url, headers=headers, timeout=5, trust_env=False) as http:
            answer = http.post("/api/0/query", json={"sql": "SELECT count(*) FROM events"}).json()
            issues = http.get("/api/0/issues", params={"status": "all", "limit": 1}).json()["total"]
            monitors = http.get("/api/0/monitors", params={"limit": 1}).json()["total"]
        events = answer["rows"][0][0]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        return f"{line}; data {kept}"
    return f"{line}; the server holds {events} events, {issues} issues, {monitors} cron monitors; data {kept}"


def _run(opswatch: Any, dsn: str, data_dir: Path, args: argparse.Namespace) -> None:
    """Run the app (unless ``--no-app``) until Ctrl-C, SIGTERM or the end of ``--duration``; at the end,
    deliver what it sent and detach the SDK from the server before the server stops."""
    from ._church_app import ChurchApp

    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    church: ChurchApp | None = None
    try:
        if not args.no_app:
            # The app's records go to the demo server only: no console noise, no Sentry, no Slack.
            opswatch.init(
                service="church-app",
                environment="demo",
                release="demo-1",
                dsn=dsn,
                spool_dir=str(data_dir / "sdk-spool"),  # a backlog stays with the demo's data
                console=False,
                capture_stdlib=False,
                sentry_enabled=False,
                alerts_enabled=False,
            )
            church = ChurchApp(seed=args.seed, scenario=_demo_alerts.Scenario().scaled(args.time_scale))
            church.start()
        deadline = None if args.duration is None else time.monotonic() + args.duration
        next_summary = time.monotonic() + SUMMARY_EVERY
        while not stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if church is not None and now >= next_summary:
                print(church.summary(), flush=True)
                next_summary = now + SUMMARY_EVERY
            stop.wait(min(1.0, (deadline - now) if deadline is not None else 1.0))
    finally:
        if church is not None:
            church.stop()
            opswatch.flush(5.0)
            _quiet_sdk(opswatch)
            print(church.summary(), flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
