"""The ``opswatch`` command. Each subcommand lives in its own module and registers itself here.

A command module exposes ``register(subparsers)``, which adds its parser and sets ``handler`` to a function
taking the parsed arguments and returning the exit code. Bad input exits non-zero with a one-line reason.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .._version import __version__

#: Command modules, in the order ``--help`` lists them. Missing ones (an extra not installed) are skipped.
COMMANDS: list[str] = ["serve", "demo", "projects", "tail", "query", "notify", "issues", "crons", "ship"]


class CommandError(Exception):
    """A user-facing failure: printed as ``opswatch: <message>`` with exit code 2 (or ``code``)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="opswatch", description="Production monitoring for Python services."
    )
    parser.add_argument("--version", action="version", version=f"opswatch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"opswatch.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name and err.name.startswith("opswatch"):
                raise
            continue  # the command needs an extra that is not installed
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(handler(args) or 0)
    except CommandError as err:
        from ._output import one_line  # the reason may quote what a server or a client sent

        print(f"opswatch: {one_line(str(err))}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return 130
