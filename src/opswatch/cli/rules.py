"""``opswatch rules``: list the server's alert rules, check a rules file, run unit tests for rules
(``test FILE``, no server needed), evaluate a rule now, add and delete rules managed through the API.

``list`` and ``eval`` talk to ``/api/0/rules`` at ``--url`` with the admin token; ``check FILE`` reads the
file here, with the same validation the server applies at start (no server needed), and exits 2 with
the rule and key at fault.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import CommandError, _admin_api
from ._output import print_json
from ._table import Column, print_table


def register(subparsers: Any) -> None:
    """Add ``rules`` and its subcommands."""
    parser = subparsers.add_parser("rules", help="the server's alert rules: list, check a file, evaluate")
    parser.set_defaults(handler=lambda _args: _usage(parser))
    commands = parser.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")

    listing = commands.add_parser("list", help="rules with their state")
    _admin_api.add_arguments(listing)
    listing.set_defaults(handler=_list)

    check = commands.add_parser("check", help="validate a rules file (TOML) without a server")
    check.add_argument("file", help="the rules file")
    check.add_argument("--format", choices=("table", "json"), default="table")
    check.set_defaults(handler=_check)

    evaluate = commands.add_parser("eval", help="evaluate one rule now (changes nothing)")
    evaluate.add_argument("name", help="the rule's name")
    _admin_api.add_arguments(evaluate)
    evaluate.set_defaults(handler=_eval)

    unit = commands.add_parser("test", help="run unit tests for rules (a TOML test file) without a server")
    unit.add_argument("file", help="the test file (see the README's 'Testing rules')")
    unit.set_defaults(handler=_test)

    add = commands.add_parser("add", help="add or replace the rules of a TOML file on the server (API rules)")
    add.add_argument("file", help="a rules file ([[rules]] tables)")
    _admin_api.add_arguments(add)
    add.set_defaults(handler=_add)

    remove = commands.add_parser("delete", help="delete a rule added through the API")
    remove.add_argument("name", help="the rule's name")
    _admin_api.add_arguments(remove)
    remove.set_defaults(handler=_delete)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    with _admin_api.client(args) as http:
        return _admin_api.call(http, method, path, **kwargs)


#: Columns whose text may wrap (the rest keep their whole text), by header.
FREE_TEXT = frozenset(
    {"Rule", "Thresholds", "State", "Instance", "Labels", "Matchers", "Comment", "Group by"}
)


def _table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """Print a table with the CLI's one table layout (``_table``: width rules, no control characters)."""
    print_table([Column(header, free=header in FREE_TEXT) for header in headers], rows, title=title)


def _threshold(rule: dict[str, Any]) -> str:
    parts = [f"{key} {rule[key]}" for key in ("warning", "critical", "resolve") if rule.get(key)]
    return ", ".join(parts)


def _list(args: argparse.Namespace) -> int:
    answer = _request(args, "GET", "/api/0/rules")
    if args.format == "json":
        print_json(answer)
        return 0
    rows = []
    for rule in answer["items"]:
        counts = rule.get("instances") or {}
        if rule["error"]:
            state = f"error: {rule['error']}"
        elif rule.get("waiting_for"):
            state = f"waiting for {', '.join(rule['waiting_for'])}"
        else:
            state = f"{counts.get('firing', 0)} firing, {counts.get('pending', 0)} pending"
        rows.append(
            [
                rule["name"],
                rule.get("source", "-"),
                rule["signal"],
                rule["window"],
                _threshold(rule),
                state,
                rule.get("last_eval_at") or "-",
            ]
        )
    headers = ["Rule", "Source", "Signal", "Window", "Thresholds", "State", "Last evaluated"]
    _table(f"{answer['total']} rule(s)", headers, rows)
    if answer.get("shadowed"):
        print(f"stored through the API but overridden by the rules file: {', '.join(answer['shadowed'])}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..server.rules.load import load_file
    from ..server.rules.views import rule_view

    try:
        rules = load_file(args.file)
    except ConfigError as err:
        raise CommandError(str(err).removeprefix("opswatch setting ")) from None
    if args.format == "json":
        print_json([rule_view(rule) for rule in rules])
        return 0
    views = [rule_view(rule) for rule in rules]
    rows = [[v["name"], v["signal"], v["window"], _threshold(v), ", ".join(v["group_by"])] for v in views]
    _table(
        f"{args.file}: {len(rules)} rule(s), all valid",
        ["Rule", "Signal", "Window", "Thresholds", "Group by"],
        rows,
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    answer = _request(args, "POST", f"/api/0/rules/{args.name}/eval")
    if args.format == "json":
        print_json(answer)
        return 0
    if answer["error"]:
        raise CommandError(f"rule {args.name!r} could not be evaluated: {answer['error']}", code=1)
    if not answer["expected"]:
        print(f"rule {args.name!r} is outside its active schedule; not evaluated")
        return 0
    if answer["waiting_for"]:
        print(
            f"rule {args.name!r} is waiting for field(s) no event has had: {', '.join(answer['waiting_for'])}"
        )
    rows = [
        [
            ", ".join(f"{k}={v}" for k, v in item["labels"].items()) or "(all events)",
            "no data" if item["value"] is None else f"{item['value']:.6g}",
            "-" if item["events"] is None else str(item["events"]),
            item["level"] or "ok",
        ]
        for item in answer["instances"]
    ]
    title = f"{args.name}: {answer['window_start']} .. {answer['window_end']}"
    _table(title, ["Instance", "Value", "Events", "Level"], rows)
    return 0


def _test(args: argparse.Namespace) -> int:
    """Exit 0 when every test passes, 1 when one fails, 2 when the file (or its rules) is not valid."""
    from ..config import ConfigError
    from ..server.rules.ruletest import run_file

    try:
        report = run_file(args.file)
    except ConfigError as err:
        raise CommandError(str(err).removeprefix("opswatch setting ")) from None
    print(report.text())
    return 0 if report.passed else 1


def _add(args: argparse.Namespace) -> int:
    """Check the whole file here first (nothing is sent when one rule is bad), then PUT each rule."""
    import tomllib

    from ..config import ConfigError
    from ..server.rules.load import load_file

    try:
        load_file(args.file)
    except ConfigError as err:
        raise CommandError(str(err).removeprefix("opswatch setting ")) from None
    with open(args.file, "rb") as handle:
        tables = tomllib.load(handle).get("rules", [])
    done = []
    with _admin_api.client(args) as http:
        for table in tables:
            answer = _admin_api.call(http, "PUT", f"/api/0/rules/{table['name']}", json=table)
            done.append(answer["name"])
    if args.format == "json":
        print_json({"added": done})
    else:
        print(f"added or replaced {len(done)} rule(s): {', '.join(done)}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    answer = _request(args, "DELETE", f"/api/0/rules/{args.name}")
    if args.format == "json":
        print_json(answer)
    else:
        back = f"; the {answer['restored']} rule of that name applies again" if answer["restored"] else ""
        print(f"deleted rule {args.name!r}{back}")
    return 0
