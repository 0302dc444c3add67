"""``opswatch projects``: list projects and their DSNs, create projects, add and revoke ingest keys.

Talks to a running server's ``/api/0/projects`` (``--url``, ``OPSWATCH_ADMIN_TOKEN``).

    opswatch projects                      # list (same as ``projects list``)
    opswatch projects create checkout-api  # a new project with one key; prints its DSN
    opswatch projects keys 2               # the keys of project 2
    opswatch projects add-key 2 --label ci # another key
    opswatch projects revoke KEY           # stop accepting events with KEY
"""

from __future__ import annotations

import argparse
from typing import Any

from . import CommandError
from ._admin_api import add_arguments, call, client
from ._output import one_line, print_json
from ._table import Column, print_table


def register(subparsers: Any) -> None:
    """Add ``projects`` and its subcommands."""
    parser = subparsers.add_parser("projects", help="list and create projects and their ingest keys")
    add_arguments(parser)
    parser.set_defaults(handler=_list)
    commands = parser.add_subparsers(dest="projects_command", metavar="SUBCOMMAND")

    listing = commands.add_parser("list", help="every project with its keys and DSNs")
    add_arguments(listing, inherited=True)
    listing.set_defaults(handler=_list)

    create = commands.add_parser("create", help="a new project with one ingest key")
    create.add_argument("name")
    add_arguments(create, inherited=True)
    create.set_defaults(handler=_create)

    keys = commands.add_parser("keys", help="the ingest keys of a project")
    keys.add_argument("project_id", type=int)
    add_arguments(keys, inherited=True)
    keys.set_defaults(handler=_keys)

    add_key = commands.add_parser("add-key", help="add an ingest key to a project")
    add_key.add_argument("project_id", type=int)
    add_key.add_argument("--label", default="", help="what the key is for")
    add_arguments(add_key, inherited=True)
    add_key.set_defaults(handler=_add_key)

    for name, active in (("revoke", False), ("enable", True)):
        sub = commands.add_parser(
            name, help=f"{'stop' if not active else 'start again'} accepting events with a key"
        )
        sub.add_argument("key")
        add_arguments(sub, inherited=True)
        sub.set_defaults(handler=_set_active, active=active)


def _list(args: argparse.Namespace) -> int:
    with client(args) as http:
        answer = call(http, "GET", "/api/0/projects")
    if args.format == "json":
        print_json(answer)
        return 0
    rows = [
        (str(p["id"]), p["name"], key["label"] or "-", "yes" if key["active"] else "revoked", key["dsn"])
        for p in answer["projects"]
        for key in (p["keys"] or [{"label": "", "active": False, "dsn": "(no key)"}])
    ]
    columns = [Column("id", right=True), Column("project", free=True), Column("key", free=True)]
    print_table([*columns, Column("active"), Column("dsn")], rows)
    return 0


def _create(args: argparse.Namespace) -> int:
    with client(args) as http:
        project = call(http, "POST", "/api/0/projects", json={"name": args.name})
    if args.format == "json":
        print_json(project)
    else:
        print(one_line(f"project {project['id']} ({project['name']}) created"))
        print(f"OPSWATCH_DSN={project['keys'][0]['dsn']}")
    return 0


def _keys(args: argparse.Namespace) -> int:
    with client(args) as http:
        answer = call(http, "GET", f"/api/0/projects/{args.project_id}/keys")
    if args.format == "json":
        print_json(answer)
        return 0
    rows = [
        (k["key"], k["label"] or "-", "yes" if k["active"] else "revoked", k["created_at"], k["dsn"])
        for k in answer["keys"]
    ]
    columns = [Column("key"), Column("label", free=True), Column("active"), Column("created")]
    print_table([*columns, Column("dsn")], rows)
    return 0


def _add_key(args: argparse.Namespace) -> int:
    with client(args) as http:
        key = call(http, "POST", f"/api/0/projects/{args.project_id}/keys", json={"label": args.label})
    if args.format == "json":
        print_json(key)
    else:
        print(f"OPSWATCH_DSN={key['dsn']}")
    return 0


def _set_active(args: argparse.Namespace) -> int:
    if not args.key.strip():
        raise CommandError("which key? (opswatch projects keys PROJECT_ID lists them)")
    action = "enable" if args.active else "revoke"
    with client(args) as http:
        answer = call(http, "POST", f"/api/0/keys/{args.key}/{action}")
    if args.format == "json":
        print_json(answer)
    else:
        print(f"key {args.key} {'enabled' if args.active else 'revoked'}")
    return 0
