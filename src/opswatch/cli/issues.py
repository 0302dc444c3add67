"""``opswatch issues``: list, show, resolve, ignore and reopen the issues of a running server.

Talks to the server's ``/api/0/issues`` endpoints at ``--url`` (default ``OPSWATCH_URL`` or
http://127.0.0.1:8321) with the admin token from ``OPSWATCH_ADMIN_TOKEN`` (or ``--token``). Tables for
people, ``--format json`` for programs.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import re
from typing import Any

from . import CommandError, _admin_api
from ._output import colors_enabled, one_line, paint, print_json
from ._table import Column, output_width, pairs, print_table
from ._times import ago

_SPARK = "▁▂▃▄▅▆▇█"
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def register(subparsers: Any) -> None:
    """Add ``issues`` and its subcommands."""
    parser = subparsers.add_parser("issues", help="list and manage the server's issues (grouped errors)")
    parser.set_defaults(handler=lambda _args: _usage(parser))
    commands = parser.add_subparsers(dest="issues_command", metavar="SUBCOMMAND")

    listing = commands.add_parser("list", help="issues, most recent first")
    listing.add_argument(
        "--status",
        default="unresolved",
        help="unresolved (default, includes regressed), regressed, resolved, ignored or all",
    )
    listing.add_argument("--level", help="error or fatal")
    listing.add_argument(
        "--query",
        "-q",
        help="words in title/culprit/operation; key:value for operation, release, environment, type",
    )
    listing.add_argument(
        "--sort", default="last_seen", help="last_seen, first_seen, times_seen (freq) or level"
    )
    listing.add_argument("--limit", type=int, default=25)
    listing.add_argument("--project", type=int, help="only this project id")
    _common(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="one issue whole: counts, releases, activity, latest event")
    show.add_argument("issue_id", type=int)
    _common(show)
    show.set_defaults(handler=_show)

    for name, helptext in (("resolve", "mark issues resolved"), ("reopen", "make issues unresolved again")):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("issue_ids", type=int, nargs="+", metavar="ISSUE_ID")
        _common(sub)
        sub.set_defaults(handler=_move, move=name)

    ignore = commands.add_parser("ignore", help="ignore issues forever, for a while, or for N more events")
    ignore.add_argument("issue_ids", type=int, nargs="+", metavar="ISSUE_ID")
    when = ignore.add_mutually_exclusive_group()
    when.add_argument("--for", dest="duration", help="how long: 30m, 2h, 7d, 1w (seconds without a unit)")
    when.add_argument("--until", help="until this time (ISO 8601; UTC when no offset is given)")
    ignore.add_argument("--count", type=int, help="until this many more events")
    _common(ignore)
    ignore.set_defaults(handler=_move, move="ignore")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _common(parser: argparse.ArgumentParser) -> None:
    _admin_api.add_arguments(parser)


def _request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    with _admin_api.client(args) as http:
        return _admin_api.call(http, method, path, **kwargs)


# -- handlers ------------------------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"status": args.status, "sort": args.sort, "limit": args.limit}
    for name in ("level", "query", "project"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    page = _request(args, "GET", "/api/0/issues", params=params)
    if args.format == "json":
        print_json(page)
        return 0
    columns = [
        Column("ID", right=True),
        Column("Status", style=_STATUS_STYLE.get),
        Column("Level", style=_LEVEL_STYLE.get),
        Column("Events", right=True),
        Column("24h", optional=True),
        Column("Last seen"),
        Column("Issue", free=True),
    ]
    rows = [
        [
            str(issue["id"]),
            issue["status"],
            issue["level"],
            str(issue["count"]),
            sparkline(issue.get("counts_24h") or []),
            ago(issue["last_seen"]),
            (issue["title"], issue["culprit"] or ""),
        ]
        for issue in page["items"]
    ]
    print_table(columns, rows, title=f"{page['total']} issue(s)")
    return 0


_STATUS_STYLE = {"unresolved": "yellow", "regressed": "red", "resolved": "green", "ignored": "dim"}
_LEVEL_STYLE = {"error": "red", "fatal": "red"}


def _show(args: argparse.Namespace) -> int:
    issue = _request(args, "GET", f"/api/0/issues/{args.issue_id}")
    if args.format == "json":
        print_json(issue)
        return 0
    color = colors_enabled()
    width = output_width()
    print(paint(one_line(f"#{issue['id']} {issue['title']}"), "bold", color))
    status = issue["status"] + (
        f" (ignored until {issue['ignore_until']})" if issue.get("ignore_until") else ""
    )
    rows: list[tuple[str, str]] = [
        ("status", status),
        ("level", issue["level"]),
        ("culprit", issue["culprit"] or ""),
        ("operation", issue.get("operation") or ""),
        ("events", f"{issue['count']}   last 24h {sparkline(issue.get('counts_24h') or [])}"),
        ("first seen", f"{issue['first_seen']} ({issue.get('first_release') or 'no release'})"),
        ("last seen", f"{issue['last_seen']} ({issue.get('last_release') or 'no release'})"),
        ("releases", ", ".join(f"{r['value']} ({r['count']})" for r in issue.get("releases", []))),
        ("environments", ", ".join(f"{e['value']} ({e['count']})" for e in issue.get("environments", []))),
        ("grouping", f"v{issue['grouping']['version']} by {issue['grouping'].get('method')}"),
    ]
    for line in pairs([(label, value) for label, value in rows if value], width=width, right_labels=True):
        print(line)
    event = issue.get("latest_event") or {}
    error = event.get("error")
    if isinstance(error, dict):
        print("\nlatest event " + one_line(str(event.get("event_id", ""))))
        for line in exception_lines(error):
            print(paint(line, "dim", color) if line.startswith(" · ") else line)
    if issue.get("activity"):
        print("\nactivity")
        for item in issue["activity"]:
            print("   " + one_line(f"{item['at']}  {item['kind']:<14} {item['actor']}"))
    return 0


def exception_lines(error: dict[str, Any], *, frames: int = 10, depth: int = 10) -> list[str]:
    """An event's error and its causes, as the issue page shows them: the raised exception first, then
    each cause under "caused by", each with its last ``frames`` frames (library frames marked ``·``)."""
    lines: list[str] = []
    current: Any = error
    for level in range(depth):
        if not isinstance(current, dict):
            break
        if level:
            lines.append("")
            lines.append("   caused by")
        for frame in [f for f in current.get("stack") or [] if isinstance(f, dict)][-frames:]:
            marker = " " if frame.get("in_app", True) else "·"
            where = f"{frame.get('file')}:{frame.get('line')} in {frame.get('function')}"
            lines.append(f" {marker} {one_line(where)}")
        lines.append("   " + one_line(f"{current.get('type') or 'Error'}: {current.get('message') or ''}"))
        current = current.get("cause")
    return lines


def _move(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"actor": f"cli:{_user()}"}
    if args.move == "ignore":
        if args.duration is not None:
            body["duration"] = parse_duration(args.duration)
        if args.until is not None:
            body["until"] = _parse_until(args.until)
        if args.count is not None:
            if args.count < 1:
                raise CommandError("--count: expected at least 1")
            body["count"] = args.count
    results = [
        _request(args, "POST", f"/api/0/issues/{issue_id}/{args.move}", json=body)
        for issue_id in args.issue_ids
    ]
    if args.format == "json":
        print_json(results if len(results) > 1 else results[0])
        return 0
    for issue in results:
        print(one_line(f"#{issue['id']} {issue['status']}: {issue['title']}"))
    return 0


# -- helpers -------------------------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """``30m``, ``2h``, ``7d``, ``1w`` or plain seconds as seconds; raises ``CommandError``."""
    match = _DURATION.fullmatch(text)
    if match is None or float(match.group(1)) <= 0:
        raise CommandError(f"--for: expected a duration such as 30m, 2h, 7d or 1w, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _parse_until(text: str) -> str:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--until: expected an ISO 8601 time such as 2025-11-03T09:00, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.isoformat()


def sparkline(counts: list[int]) -> str:
    """Counts as block characters scaled to the largest (blank string for no counts)."""
    if not counts:
        return ""
    top = max(counts)
    if top == 0:
        return _SPARK[0] * len(counts)
    return "".join(_SPARK[min(len(_SPARK) - 1, (c * (len(_SPARK) - 1) + top - 1) // top)] for c in counts)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
