"""``opswatch crons``: list, show, create, edit, pause, resume and delete the cron monitors of a server.

Talks to ``/api/0/monitors`` at ``--url`` (default ``OPSWATCH_URL`` or http://127.0.0.1:8321) with the
admin token from ``OPSWATCH_ADMIN_TOKEN`` (or ``--token``). Tables for people, ``--format json`` for
programs. Durations take a unit (``90s``, ``5m``, ``2h``); a bare number is minutes, Sentry's unit.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from . import CommandError, _admin_api
from ._output import colors_enabled, one_line, paint, print_json
from ._table import Column, output_width, pairs, print_table
from ._times import ago, until

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
        print_json(page)
        return 0
    items = page["items"]
    projects = {item["project_id"] for item in items}
    columns = [
        Column("Monitor", free=True),
        *([Column("Project", right=True)] if len(projects) > 1 else []),
        Column("Status", style=_STATUS_STYLE.get),
        Column("Last run"),
        Column("Next due"),
        Column("OK", right=True),
        Column("Avg", right=True),
    ]
    rows = [
        [
            (item["slug"], _schedule(item)),
            *([str(item["project_id"])] if len(projects) > 1 else []),
            item["status"],
            ago(item["last_checkin_at"]),
            until(item["next_expected_at"]),
            _rate(item["success_rate"]),
            _ms(item["avg_duration_ms"]),
        ]
        for item in items
    ]
    where = f" in project {projects.pop()}" if len(projects) == 1 else ""
    print_table(columns, rows, title=f"{page['total']} monitor(s){where}")
    for rejected in page.get("rejected") or []:
        print(
            one_line(
                f"refused {rejected['count']} check-in(s) for {rejected['slug']!r} "
                f"(project {rejected['project_id']}): {rejected['reason']}"
            )
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    monitor = _request(args, "GET", f"/api/0/monitors/{args.slug}", params=_params(args))
    if args.format == "json":
        print_json(monitor)
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
            print_json({"deleted": args.slug})
        else:
            print(f"deleted monitor {args.slug}")
        return 0
    monitor = _request(args, "POST", f"{path}/{args.action}", params=_params(args))
    return _report(args, monitor, "paused" if args.action == "pause" else "resumed")


def _report(args: argparse.Namespace, monitor: dict[str, Any], verb: str) -> int:
    if args.format == "json":
        print_json(monitor)
    else:
        expected = _time(monitor["next_expected_at"])
        print(one_line(f"{verb} monitor {monitor['slug']}: {monitor['status']}, next expected {expected}"))
    return 0


# -- output --------------------------------------------------------------------------------------------


def _print_monitor(monitor: dict[str, Any]) -> None:
    color = colors_enabled()
    status = paint(monitor["status"], _STATUS_STYLE.get(monitor["status"]), color)
    print(f"{paint(one_line(monitor['slug']), 'bold', color)} (project {monitor['project_id']}): {status}")
    settings = monitor["settings"]
    facts = [
        ("schedule", _schedule(monitor)),
        (
            "margins",
            f"{_seconds(settings['checkin_margin_seconds'])} late, "
            f"{_seconds(settings['early_margin_seconds'])} early; "
            f"max runtime {_seconds(settings['max_runtime_seconds'])}",
        ),
        ("thresholds", f"{settings['failure_threshold']} bad / {settings['recovery_threshold']} ok"),
        ("last check-in", _time(monitor["last_checkin_at"])),
        ("last ok", _time(monitor["last_ok_at"])),
        ("next expected", _time(monitor["next_expected_at"])),
        ("success", f"{_rate(monitor['success_rate'])} of {monitor['recent_runs']} recent run(s)"),
        ("avg duration", _ms(monitor["avg_duration_ms"])),
    ]
    for line in pairs(facts, width=output_width()):
        print(line)
    if monitor.get("failing_since"):
        failing = f"failing since {_time(monitor['failing_since'])}"
        print(f"{paint(failing, 'red', color)} ({one_line(str(monitor['failing_reason']))})")
    print()
    runs = [
        [
            _time(run["started_at"]),
            run["status"] + (f" ×{run['missed_slots']}" if run.get("missed_slots", 1) > 1 else ""),
            _ms(run["duration_ms"]),
            run["run_id"] or "",
        ]
        for run in monitor["runs"]
    ]
    print_table(
        [Column("Started"), Column("Status"), Column("Duration", right=True), Column("Run id", free=True)],
        runs,
        title="recent runs",
    )
    print()
    changes = [[_time(c["at"]), c["change"], c["status"]] for c in monitor["changes"]]
    columns = [Column("At"), Column("Change", free=True), Column("Status")]
    print_table(columns, changes, title="recent changes")


_STATUS_STYLE: dict[str, str] = {
    "ok": "green",
    "failing": "red",
    "missed": "yellow",
    "timeout": "yellow",
    "error": "yellow",
}


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
