"""``opswatch alerts`` (pending and firing alerts, recent history) and ``opswatch silence add | list |
expire``, through ``/api/0/alerts`` and ``/api/0/silences`` at ``--url`` with the admin token.

A matcher is ``name=value`` or ``name=~regex`` (the whole value must match); ``rule`` names the rule.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import CommandError, _admin_api
from ._output import print_json
from .rules import _request, _table


def register(subparsers: Any) -> None:
    """Add ``alerts`` and ``silence``."""
    alerts = subparsers.add_parser("alerts", help="pending and firing alerts, and what was notified")
    alerts.add_argument("--state", choices=("active", "firing", "pending", "all"), default="active")
    alerts.add_argument("--rule", help="only this rule")
    alerts.add_argument("--history", type=int, default=10, help="history rows to show (default 10)")
    _admin_api.add_arguments(alerts)
    alerts.set_defaults(handler=_alerts)

    silence = subparsers.add_parser("silence", help="mute alert notifications: add, list, expire")
    silence.set_defaults(handler=lambda _args: _usage(silence))
    commands = silence.add_subparsers(dest="silence_command", metavar="SUBCOMMAND")
    add = commands.add_parser("add", help="mute notifications matching every matcher")
    add.add_argument("matchers", nargs="+", metavar="MATCHER", help="name=value or name=~regex")
    add.add_argument("--duration", default="2h", help="how long (default 2h): 30m, 2h, 1d")
    add.add_argument("--author", required=True, help="who is silencing")
    add.add_argument("--comment", default="", help="why")
    _admin_api.add_arguments(add)
    add.set_defaults(handler=_add)
    listing = commands.add_parser("list", help="silences, newest first")
    _admin_api.add_arguments(listing)
    listing.set_defaults(handler=_list)
    expire = commands.add_parser("expire", help="end a silence now")
    expire.add_argument("id", type=int)
    _admin_api.add_arguments(expire)
    expire.set_defaults(handler=_expire)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "rule") or "-"


def _alerts(args: argparse.Namespace) -> int:
    if not 0 <= args.history <= 1000:
        raise CommandError("--history: expected 0..1000")
    params: dict[str, Any] = {"state": args.state, "history": args.history}
    if args.rule:
        params["rule"] = args.rule
    answer = _request(args, "GET", "/api/0/alerts", params=params)
    if args.format == "json":
        print_json(answer)
        return 0
    rows = [
        [
            item["rule"],
            _labels(item["labels"]),
            item["state"] + (" (flapping)" if item["flapping"] else ""),
            item["severity"] or "-",
            "no data" if item["value"] is None else f"{item['value']:.6g}",
            item["firing_since"] or item["pending_since"] or "-",
        ]
        for item in answer["items"]
    ]
    _table(f"{answer['total']} alert(s)", ["Rule", "Labels", "State", "Severity", "Value", "Since"], rows)
    if answer["history"]:
        history = [
            [row["at"], row["rule"], row["kind"], _labels(row["labels"]), row["status"]]
            for row in answer["history"]
        ]
        _table("History", ["At", "Rule", "Change", "Labels", "Notification"], history)
    return 0


def _matcher(text: str) -> dict[str, Any]:
    from ..server.rules.silences import SilenceError, parse_matcher_text

    try:
        return parse_matcher_text(text).as_dict()
    except SilenceError as err:
        raise CommandError(str(err)) from None


def _add(args: argparse.Namespace) -> int:
    body = {
        "matchers": [_matcher(text) for text in args.matchers],
        "duration": args.duration,
        "author": args.author,
        "comment": args.comment,
    }
    silence = _request(args, "POST", "/api/0/silences", json=body)
    if args.format == "json":
        print_json(silence)
    else:
        print(f"silence {silence['id']} added, active until {_stamp(silence['ends_at'])}")
    return 0


def _list(args: argparse.Namespace) -> int:
    answer = _request(args, "GET", "/api/0/silences")
    if args.format == "json":
        print_json(answer)
        return 0
    rows = [
        [
            str(s["id"]),
            ", ".join(f"{m['name']}{'=~' if m['regex'] else '='}{m['value']}" for m in s["matchers"]),
            s["state"],
            _stamp(s["ends_at"]),
            s["author"],
            s["comment"],
        ]
        for s in answer["items"]
    ]
    _table(f"{answer['total']} silence(s)", ["Id", "Matchers", "State", "Ends", "Author", "Comment"], rows)
    return 0


def _expire(args: argparse.Namespace) -> int:
    silence = _request(args, "POST", f"/api/0/silences/{args.id}/expire")
    if args.format == "json":
        print_json(silence)
    else:
        print(f"silence {silence['id']} expired")
    return 0


def _stamp(epoch: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
