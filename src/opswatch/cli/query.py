"""``opswatch query "SQL"``: read-only SQL over the events, as a table, JSON or CSV.

    opswatch query "SELECT churchId, COUNT(*) AS n, SUM(amount) AS total FROM logs
                    WHERE operation = 'metrics.donation.completed' GROUP BY churchId ORDER BY total DESC"
    opswatch query --format csv "SELECT level, count(*) FROM events GROUP BY level" > levels.csv
    opswatch query --data-dir ./opswatch-data "SELECT count(*) FROM logs"    # a stopped server's data
    echo "SELECT 1" | opswatch query -                                         # SQL from stdin

By default the SQL goes to a running server (``POST /api/0/query``; ``--url``, default ``OPSWATCH_URL``
or http://127.0.0.1:8321, with the admin token from ``OPSWATCH_ADMIN_TOKEN``). With ``--data-dir`` the
event store file is opened read-only in this process (only while no server has it open). Either way the
same checks and limits apply (``opswatch.server.query``): one SELECT over ``logs``/``events``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import orjson

from . import CommandError
from ._admin_api import call, client
from ._headers import expression_headers
from ._output import csv_cell, json_text, one_line
from ._table import Column, fits, output_width, print_table, records


def register(subparsers: Any) -> None:
    """Add ``query``."""
    parser = subparsers.add_parser("query", help="run read-only SQL over the events (views logs, events)")
    parser.add_argument("sql", help='the SQL ("-" reads it from stdin)')
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="the server (default: $OPSWATCH_URL or http://127.0.0.1:8321)")
    where.add_argument("--data-dir", help="read a stopped server's data directory instead of asking a server")
    parser.add_argument("--token", help="admin token (default: $OPSWATCH_ADMIN_TOKEN)")
    parser.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format (default: table)"
    )
    parser.add_argument("--max-rows", type=int, default=None, help="row cap (default 10000, at most 100000)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds it may run (default 30)")
    parser.set_defaults(handler=query)


def query(args: argparse.Namespace) -> int:
    """Run the SQL and print the answer; a refused or failed query exits 2 with the reason."""
    sql = sys.stdin.read() if args.sql == "-" else args.sql
    if not sql.strip():
        raise CommandError("no SQL given")
    answer = _local(args, sql) if args.data_dir else _remote(args, sql)
    _print(answer, args.format, sql)
    notice = answer.get("notice")
    if notice:
        print(f"opswatch: {notice}", file=sys.stderr)
    return 0


def _remote(args: argparse.Namespace, sql: str) -> dict[str, Any]:
    body: dict[str, Any] = {"sql": sql}
    if args.max_rows is not None:
        body["max_rows"] = args.max_rows
    if args.timeout is not None:
        body["timeout"] = args.timeout
    wait = (args.timeout if args.timeout is not None else 30.0) + 10.0  # the server's limit answers first
    with client(args) as http:
        answer: dict[str, Any] = call(http, "POST", "/api/0/query", json=body, timeout=wait)
    return answer


def _local(args: argparse.Namespace, sql: str) -> dict[str, Any]:
    try:
        from ..server import limits
        from ..server.query import jsonable, run_query, truncation_notice
        from ..server.store.base import QueryError
        from ..server.store.duckdb import EVENTS_FILENAME, DuckDBStore, StoreError
    except ModuleNotFoundError as err:
        raise CommandError(f"--data-dir needs the server extra: pip install 'opswatch[server]' ({err.name})") from None  # noqa: E501
    path = Path(args.data_dir).expanduser() / EVENTS_FILENAME
    try:
        store = DuckDBStore(path, read_only=True)
    except StoreError as err:
        message = str(err)
        if "in use" in message:
            message += "; ask it with --url instead"
        raise CommandError(message) from None
    try:
        result = run_query(
            store,
            sql,
            max_rows=args.max_rows if args.max_rows is not None else limits.QUERY_DEFAULT_MAX_ROWS,
            timeout=args.timeout if args.timeout is not None else limits.QUERY_DEFAULT_TIMEOUT_SECONDS,
        )
    except QueryError as err:
        raise CommandError(str(err)) from None
    finally:
        store.close()
    answer: dict[str, Any] = {
        "columns": result.columns,
        "rows": [[jsonable(value) for value in row] for row in result.rows],
        "row_count": len(result.rows),
        "truncated": result.truncated,
        "elapsed_ms": round(result.elapsed_ms, 3),
    }
    notice = truncation_notice(result)
    if notice:
        answer["notice"] = notice
    return answer


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


def _print(answer: dict[str, Any], fmt: str, sql: str) -> None:
    columns: list[str] = answer["columns"]
    rows: list[list[Any]] = answer["rows"]
    if fmt == "json":
        sys.stdout.write(json_text(orjson.dumps(answer).decode()) + "\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([csv_cell(header) for header in expression_headers(sql, columns)])
        writer.writerows([_csv(value) for value in row] for row in rows)
    else:
        _print_table(expression_headers(sql, columns), rows)
        count = len(rows)
        plural = "s" if count != 1 else ""
        print(f"{count} row{plural} in {answer.get('elapsed_ms', 0):.1f} ms", file=sys.stderr)
    sys.stdout.flush()


def _csv(value: Any) -> str:
    """A CSV cell: text is guarded against formula injection; numbers are written as they are."""
    text = _cell(value)
    return csv_cell(text) if isinstance(value, str) else text


def _print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """Rows as a table when they fit the width; otherwise one block per row (as psql's ``\\x auto``),
    leaving out the columns that are NULL in every row shown (and saying which on stderr)."""
    cells = [[_cell(value) for value in row] for row in rows]
    columns = [_column(header, [row[i] for row in rows]) for i, header in enumerate(headers)]
    width = output_width()
    if fits(columns, cells, width):
        print_table(columns, cells)
        return
    shown = [i for i in range(len(headers)) if any(row[i] is not None for row in rows)]
    lines = records([headers[i] for i in shown], [[row[i] for i in shown] for row in cells], width=width)
    sys.stdout.write("\n".join(lines) + "\n")
    empty = [headers[i] for i in range(len(headers)) if i not in shown]
    if empty:
        names = ", ".join(one_line(name) for name in empty)
        print(f"left out {len(empty)} column(s) NULL in every row shown: {names}", file=sys.stderr)


def _column(header: str, values: list[Any]) -> Column:
    """Numbers align right; a column is free text (may wrap) when a value holds spaces or is JSON."""
    present = [value for value in values if value is not None]
    numeric = bool(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    )
    free = any(isinstance(v, dict | list) or (isinstance(v, str) and " " in v.strip()) for v in present)
    return Column(header, free=free, right=numeric)
