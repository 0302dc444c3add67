"""``opswatch crons``: list, show, create, edit, pause, resume and delete the cron monitors of a server.

Talks to ``/api/0/monitors`` at ``--url`` (default ``OPSWATCH_URL`` or http://127.0.0.1:8321) with the
admin token from ``OPSWATCH_ADMIN_TOKEN`` (or ``--token``). Tables for people, ``--format json`` for
programs. Durations take a unit (``90s``, ``5m``, ``2h``); a bare number is minutes, Sentry's unit.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from . import CommandError, _admin_api

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SETTINGS = (
    ("schedule", "schedule", str),
    ("timezone", "timezone", str),
    ("checkin_margin", "checkin_margin", None),
    ("early_margin", "early_margin", None),
    ("max_runtime", "max_runtime", None),
    ("failure_threshold", "failure_threshold", int),
    ("recovery_threshold", "recovery_threshold", int),
)


def register(subparsers: Any) -> None:
    """Add ``crons`` and its subcommands."""
    parser = subparsers.add_parser("crons", help="list and manage the server's cron monitors")
    parser.set_defaults(handler=lambda _args: _usage(parser))
    commands = parser.add_subparsers(dest="crons_command", metavar="SUBCOMMAND")

    listing = commands.add_parser("list", help="monitors with their status and recent health")
    listing.add_argument("--status", help="new, ok, error, missed, timeout, failing or paused")
    listing.add_argument("--limit", type=int, default=100)
    _common(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="one monitor: settings, health, recent runs and changes")
    show.add_argument("slug")
    _common(show)
    show.set_defaults(handler=_show)

    create = commands.add_parser("create", help="create a monitor")
    create.add_argument("slug")
    _setting_options(create, required_schedule=True)
    _common(create)
    create.set_defaults(handler=_create)

    edit = commands.add_parser("edit", help="change a monitor's settings (only those given)")
    edit.add_argument("slug")
    _setting_options(edit, required_schedule=False)
    _common(edit)
    edit.set_defaults(handler=_edit)

    for name, helptext in (
        ("pause", "stop judging a monitor (check-ins are still recorded)"),
        ("resume", "judge a paused monitor again, counting from now"),
        ("delete", "delete a monitor and its run history"),
    ):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("slug")
        _common(sub)
        sub.set_defaults(handler=_action, action=name)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", type=int, help="the project id (when a slug is used by several)")
    _admin_api.add_arguments(parser)


def _setting_options(parser: argparse.ArgumentParser, *, required_schedule: bool) -> None:
    parser.add_argument(
        "--schedule",
        required=required_schedule,
        help="crontab ('0 2 * * *'), @daily ..., or 'every 30 seconds'",
    )
    parser.add_argument("--timezone", help="IANA zone of the schedule (default UTC)")
    parser.add_argument("--checkin-margin", help="how late a check-in may be (default 1m)")
    parser.add_argument("--early-margin", help="how early a check-in still counts (default: the margin)")
    parser.add_argument("--max-runtime", help="longest run before it times out (default 30m)")
    parser.add_argument("--failure-threshold", type=int, help="bad results in a row before failing (1)")
    parser.add_argument("--recovery-threshold", type=int, help="oks in a row before recovered (1)")


# -- HTTP ----------------------------------------------------------------------------------------------


def _request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    with _admin_api.client(args) as http:
        return _admin_api.call(http, method, path, **kwargs)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    return {"project": args.project} if args.project is not None else {}


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, attribute, _kind in _SETTINGS:
        value = getattr(args, attribute)
        if value is None:
            continue
        if key in ("checkin_margin", "early_margin", "max_runtime") and _NUMBER.fullmatch(str(value)):
            value = float(value)  # a bare number is minutes
        settings[key] = value
    return settings


# -- handlers ------------------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit, **_params(args)}
    if args.status:
        params["status"] = args.status
    page = _request(args, "GET", "/api/0/monitors", params=params)
    if args.format == "json":
        _print_json(page)
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{page['total']} monitor(s)", title_justify="left")
    widest = max((len(item["slug"]) for item in page["items"]), default=4)
    table.add_column("Slug", overflow="fold", min_width=min(widest, 40))
    for column in ("Project", "Status", "Schedule", "Last check-in", "Next expected", "OK", "Avg"):
        table.add_column(column, overflow="fold")
    for item in page["items"]:
        table.add_row(
            item["slug"],
            str(item["project_id"]),
            _status(item["status"]),
            _schedule(item),
            _time(item["last_checkin_at"]),
            _time(item["next_expected_at"]),
            _rate(item["success_rate"]),
            _ms(item["avg_duration_ms"]),
        )
    console.print(table)
    for rejected in page.get("rejected") or []:
        console.print(
            f"[yellow]refused[/] {rejected['count']} check-in(s) for {rejected['slug']!r} "
            f"(project {rejected['project_id']}): {rejected['reason']}",
            highlight=False,
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    monitor = _request(args, "GET", f"/api/0/monitors/{args.slug}", params=_params(args))
    if args.format == "json":
        _print_json(monitor)
        return 0
    _print_monitor(monitor)
    return 0


def _create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"slug": args.slug, "config": _settings(args)}
    if args.project is not None:
        body["project"] = args.project
    monitor = _request(args, "POST", "/api/0/monitors", json=body)
    return _report(args, monitor, "created")


def _edit(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings:
        raise CommandError("give at least one setting to change (--schedule, --max-runtime ...)")
    monitor = _request(args, "PATCH", f"/api/0/monitors/{args.slug}", params=_params(args), json=settings)
    return _report(args, monitor, "updated")


def _action(args: argparse.Namespace) -> int:
    path = f"/api/0/monitors/{args.slug}"
    if args.action == "delete":
        _request(args, "DELETE", path, params=_params(args))
        if args.format == "json":
            _print_json({"deleted": args.slug})
        else:
            print(f"deleted monitor {args.slug}")
        return 0
    monitor = _request(args, "POST", f"{path}/{args.action}", params=_params(args))
    return _report(args, monitor, "paused" if args.action == "pause" else "resumed")


def _report(args: argparse.Namespace, monitor: dict[str, Any], verb: str) -> int:
    if args.format == "json":
        _print_json(monitor)
    else:
        expected = _time(monitor["next_expected_at"])
        print(f"{verb} monitor {monitor['slug']}: {monitor['status']}, next expected {expected}")
    return 0


# -- output --------------------------------------------------------------------------------------------


def _print_monitor(monitor: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{monitor['slug']}[/] (project {monitor['project_id']}): {_status(monitor['status'])}"
    )
    settings = monitor["settings"]
    console.print(
        f"schedule {_schedule(monitor)}; margin {_seconds(settings['checkin_margin_seconds'])}, "
        f"early {_seconds(settings['early_margin_seconds'])}, max runtime "
        f"{_seconds(settings['max_runtime_seconds'])}; thresholds {settings['failure_threshold']} bad / "
        f"{settings['recovery_threshold']} ok",
        highlight=False,
    )
    console.print(
        f"last check-in {_time(monitor['last_checkin_at'])}, last ok {_time(monitor['last_ok_at'])}, "
        f"next expected {_time(monitor['next_expected_at'])}; success {_rate(monitor['success_rate'])}, "
        f"avg duration {_ms(monitor['avg_duration_ms'])} over {monitor['recent_runs']} run(s)",
        highlight=False,
    )
    if monitor.get("failing_since"):
        console.print(
            f"[red]failing since {_time(monitor['failing_since'])}[/] ({monitor['failing_reason']})"
        )
    runs = Table(title="recent runs", title_justify="left")
    for column in ("Started", "Status", "Duration", "Run id"):
        runs.add_column(column)
    for run in monitor["runs"]:
        status = run["status"] + (f" ×{run['missed_slots']}" if run.get("missed_slots", 1) > 1 else "")
        runs.add_row(_time(run["started_at"]), status, _ms(run["duration_ms"]), run["run_id"] or "")
    console.print(runs)
    changes = Table(title="recent changes", title_justify="left")
    for column in ("At", "Change", "Status"):
        changes.add_column(column)
    for change in monitor["changes"]:
        changes.add_row(_time(change["at"]), change["change"], change["status"])
    console.print(changes)


def _status(status: str) -> str:
    color = {"ok": "green", "failing": "red", "missed": "yellow", "timeout": "yellow", "error": "yellow"}
    return f"[{color[status]}]{status}[/]" if status in color else status


def _schedule(item: dict[str, Any]) -> str:
    zone = item.get("timezone") or "UTC"
    return str(item.get("schedule")) + ("" if zone == "UTC" else f" ({zone})")


def _time(value: str | None) -> str:
    """``2025-06-02 02:00:00`` (UTC) from an RFC 3339 time."""
    return "-" if not value else value.replace("T", " ")[:19]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def _seconds(value: float) -> str:
    if value % 3600 == 0:
        return f"{value / 3600:g}h"
    if value % 60 == 0:
        return f"{value / 60:g}m"
    return f"{value:g}s"


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
