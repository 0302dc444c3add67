"""Read-only SQL over the event store: check with a real parser, rewrite names, run with limits.

``run_query(store, sql)`` is the one way user SQL reaches a store (``POST /api/0/query``,
``opswatch query``, the dashboard). ``check_sql`` parses the text with sqlglot (DuckDB dialect; the
ClickHouse store will reuse the same checks with its dialect) and refuses, with a reason:

* anything but exactly one ``SELECT`` (``WITH ... SELECT``, ``UNION`` ...): no DDL/DML, ``COPY``,
  ``ATTACH``, ``PRAGMA``, ``SET``, ``INSTALL``/``LOAD``, ``SELECT ... INTO``, several statements;
* tables other than the store's views (``logs``, alias ``events``; ``spans``) and the query's own CTEs
  where they are in scope; qualified names (``main.event_rows``); table functions (``read_csv``, ``query``,
  ``range`` ...) and quoted file names (``FROM 'x.csv'``);
* functions that reach outside the database (``read_*``, ``glob``, ``query``, ``*_scan``, ...);
* calls that would build a huge value from constants (``range(200000000)``, ``repeat(x, 1e9)``), which
  no runtime limit can stop (``_sql_bounds``).

The store's connection has external access disabled and its configuration locked as well, so a check
missed here still cannot read a file; the checks give the clear error.

Then it rewrites the checked tree (what runs is what was checked, regenerated from the tree, never the
raw text): a camelCase column that does not exist answers for its snake_case twin (``churchId`` finds
``church_id``); ``SELECT *`` over ``logs`` leaves out the camelCase alias columns; and the outermost
``LIMIT`` is capped at the row cap plus one, so a truncated answer is detected without reading more.
The limits are the store's: time (an interrupt from a timer, and an answer by the deadline whatever
DuckDB does), rows, answer bytes (``QUERY_MAX_ANSWER_BYTES``), and DuckDB's ``memory_limit`` and
``max_temp_directory_size`` (settings ``query_memory_limit``, ``query_temp_limit``).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import uuid
from typing import Any, Final, Protocol

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from . import limits
from ._sql_bounds import check_generated_sizes
from .store.base import QueryRefused, QueryResult, SchemaInfo
from .store.layout import snake_case

DIALECT: Final = "duckdb"

#: Statement kinds refused anywhere in the tree, with the word the error uses.
_FORBIDDEN: Final[tuple[type[exp.Expr], ...]] = (
    exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command,
    exp.Copy, exp.Set, exp.Pragma, exp.Attach, exp.Detach, exp.Use, exp.Into, exp.Transaction,
    exp.Commit, exp.Rollback, exp.Describe, exp.Summarize, exp.Install, exp.Cache, exp.Uncache,
    exp.LoadData, exp.Refresh, exp.Analyze, exp.Show, exp.Export, exp.Grant, exp.Revoke,
    exp.TruncateTable, exp.Kill, exp.Lock, exp.Declare, exp.Execute,
)  # fmt: skip

#: Function names refused (lower case, exact), and prefixes refused.
_FORBIDDEN_FUNCTIONS: Final = frozenset(
    {"glob", "query", "query_table", "getenv", "load_extension", "json_execute_serialized_sql",
     "which_secret", "current_setting", "setvariable", "sql_auto_complete", "checkpoint",
     "force_checkpoint", "enable_logging", "disable_logging", "truncate_duckdb_logs"}
)  # fmt: skip
_FORBIDDEN_PREFIXES: Final = (
    "read_", "write_", "sniff_", "parquet_", "iceberg_", "delta_", "sqlite_", "postgres_", "mysql_",
    "duckdb_", "pragma_", "http", "s3", "azure_", "gcs_", "ducklake_", "export_", "copy_", "load_",
    "install_", "test_", "icu_",
)  # fmt: skip
_FORBIDDEN_SUFFIXES: Final = ("_scan", "_attach", "_query", "_execute")


class _Store(Protocol):
    def describe(self) -> SchemaInfo: ...

    def query(self, sql: str, *, max_rows: int, timeout: float, max_bytes: int = ...) -> QueryResult: ...


@dataclasses.dataclass(frozen=True)
class CheckedQuery:
    """SQL that passed the checks, regenerated for the store, and what was rewritten on the way."""

    sql: str
    renamed: dict[str, str]


def check_sql(sql: str, schema: SchemaInfo, *, max_rows: int = limits.QUERY_DEFAULT_MAX_ROWS) -> CheckedQuery:
    """Check ``sql`` and rewrite it for the store (see the module docstring); raise ``QueryRefused``."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRefused("no SQL given")
    if len(sql) > limits.QUERY_MAX_SQL_CHARS:
        raise QueryRefused(
            f"the SQL is {len(sql)} characters long, over the limit of {limits.QUERY_MAX_SQL_CHARS}"
        )
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except SqlglotError as err:
        raise QueryRefused(f"the SQL does not parse: {_first_line(err)}") from None
    except RecursionError:
        raise QueryRefused("the SQL is nested too deeply") from None
    if not statements:
        raise QueryRefused("no SQL given")
    if len(statements) > 1:
        raise QueryRefused(f"only one statement is allowed, got {len(statements)}")
    root = statements[0]
    if not isinstance(root, exp.Query):
        raise QueryRefused(f"only SELECT queries are allowed, not {_kind(root)}")
    try:
        _check_tree(root, schema)
        check_generated_sizes(root)
        renamed = _rename_camel_case(root, schema)
        _leave_aliases_out_of_stars(root, schema)
        _cap_limit(root, max_rows)
        text = root.sql(dialect=DIALECT)
    except RecursionError:
        raise QueryRefused("the SQL is nested too deeply") from None
    return CheckedQuery(sql=text, renamed=renamed)


def run_query(
    store: _Store,
    sql: str,
    *,
    max_rows: int = limits.QUERY_DEFAULT_MAX_ROWS,
    timeout: float = limits.QUERY_DEFAULT_TIMEOUT_SECONDS,
) -> QueryResult:
    """Check ``sql`` against the store's views and run it with a row cap and a time limit.

    Raises ``QueryRefused`` (not allowed), ``QueryTimeout`` (interrupted) or ``QueryError`` (failed,
    e.g. an unknown column); every message is meant for the person who wrote the SQL.
    """
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or not 1 <= max_rows <= limits.QUERY_MAX_ROWS:  # noqa: E501
        raise QueryRefused(f"max_rows must be 1..{limits.QUERY_MAX_ROWS}, got {max_rows!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
        0 < timeout <= limits.QUERY_MAX_TIMEOUT_SECONDS
    ):
        raise QueryRefused(f"timeout must be more than 0 and at most {limits.QUERY_MAX_TIMEOUT_SECONDS:g} s")
    checked = check_sql(sql, store.describe(), max_rows=max_rows)
    return store.query(
        checked.sql, max_rows=max_rows, timeout=float(timeout), max_bytes=limits.QUERY_MAX_ANSWER_BYTES
    )


def truncation_notice(result: QueryResult) -> str | None:
    """The sentence to show when the row cap or the answer-size cap cut the answer, else None."""
    if not result.truncated:
        return None
    if result.cut_by == "bytes":
        return (
            f"the answer was cut at {len(result.rows)} rows (the answer-size cap of "
            f"{limits.QUERY_MAX_ANSWER_BYTES // limits.MiB} MiB); select fewer or shorter columns, or "
            "add a LIMIT"
        )
    return (
        f"the answer was cut at {len(result.rows)} rows (the row cap); add a LIMIT, aggregate, "
        "or ask for more rows"
    )


def jsonable(value: Any) -> Any:
    """A value from a result row in a form JSON (and CSV) can carry: times as RFC 3339 text, decimals
    and big integers as numbers or text, bytes as hex, nested values walked."""
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return value.isoformat(timespec="milliseconds") + "Z"
        return value.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


# -- checks -------------------------------------------------------------------------------------------


def _check_tree(root: exp.Expr, schema: SchemaInfo) -> None:
    forbidden = root.find(*_FORBIDDEN)
    if forbidden is not None:
        raise QueryRefused(f"only SELECT queries are allowed; {_kind(forbidden)} is not")
    allowed = {name.lower() for name in schema.tables}
    tables = ", ".join(schema.tables)
    for table in root.find_all(exp.Table):
        source = table.this
        if not isinstance(source, exp.Identifier):
            raise QueryRefused(f"table functions are not allowed ({_function_name(source)}); query {tables}")
        if table.args.get("db") or table.args.get("catalog"):
            shown = table.sql(dialect=DIALECT)
            raise QueryRefused(f"qualified table names are not allowed ({shown}); query {tables}")
        name = table.name.lower()
        if name not in allowed and name not in _visible_ctes(table):
            raise QueryRefused(f"unknown table {table.name!r}; the tables are {tables}")
    for node in root.find_all(exp.Func):
        name = _function_name(node).lower()
        if (
            name in _FORBIDDEN_FUNCTIONS
            or name.startswith(_FORBIDDEN_PREFIXES)
            or name.endswith(_FORBIDDEN_SUFFIXES)
        ):
            raise QueryRefused(f"the function {name} is not allowed (no file, network or system access)")


def _visible_ctes(table: exp.Table) -> set[str]:
    """The CTE names ``table`` can refer to, the way DuckDB binds them (lower case).

    A CTE is visible in the body of the query that defines it and in the CTEs defined after it in the
    same ``WITH``; a CTE sees itself only as the recursive (right) side of ``WITH RECURSIVE ... UNION``.
    Anything else with a CTE's name is a catalog table (``WITH x AS (SELECT * FROM x)`` reads the
    catalog's ``x``), so a CTE in one scope never lets a name through in another.
    """
    names: set[str] = set()
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.With):
            if isinstance(child, exp.CTE):
                ctes = list(node.expressions)
                position = next(i for i, cte in enumerate(ctes) if cte is child)
                names.update(cte.alias_or_name.lower() for cte in ctes[:position])
                body = child.this
                if (
                    node.args.get("recursive")
                    and isinstance(body, exp.Union)
                    and _contains(body.expression, table)
                ):
                    names.add(child.alias_or_name.lower())
        else:
            with_ = node.args.get("with_")
            if isinstance(with_, exp.With) and child is not with_:
                names.update(cte.alias_or_name.lower() for cte in with_.expressions)
        child, node = node, node.parent
    return names


def _contains(tree: exp.Expr, node: exp.Expr) -> bool:
    """Whether ``node`` is ``tree`` or inside it."""
    current: exp.Expr | None = node
    while current is not None:
        if current is tree:
            return True
        current = current.parent
    return False


def _function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    if isinstance(node, exp.Func):
        return str(node.sql_name())
    return node.key


def _kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


# -- rewrites -----------------------------------------------------------------------------------------


def _rename_camel_case(root: exp.Expr, schema: SchemaInfo) -> dict[str, str]:
    """``churchId`` -> ``church_id`` where only the snake_case column exists; returns what changed."""
    known = {name.lower() for name in schema.columns}
    defined: set[str] = set()
    for alias in root.find_all(exp.Alias):
        defined.add(alias.alias.lower())
    for table_alias in root.find_all(exp.TableAlias):
        defined.add(table_alias.name.lower())
        defined.update(column.name.lower() for column in table_alias.columns)
    renamed: dict[str, str] = {}
    for column in root.find_all(exp.Column):
        identifier = column.this
        if not isinstance(identifier, exp.Identifier):
            continue
        name = identifier.name
        lowered = name.lower()
        if lowered in known or lowered in defined:
            continue
        snake = snake_case(name)
        if snake != lowered and snake in known:
            identifier.replace(exp.to_identifier(snake))
            renamed[name] = snake
    return renamed


def _leave_aliases_out_of_stars(root: exp.Expr, schema: SchemaInfo) -> None:
    """``SELECT *`` straight from ``logs``/``events`` shows each attribute once, not with its alias."""
    if not schema.aliases:
        return
    views = {name.lower() for name in schema.tables} - {name.lower() for name in schema.plain_tables}
    for select in root.find_all(exp.Select):
        source = select.args.get("from_")
        if source is None or select.args.get("joins"):
            continue
        table = source.this
        if (
            not isinstance(table, exp.Table)
            or table.name.lower() not in views
            or table.name.lower() in _visible_ctes(table)
        ):
            continue
        for projection in select.expressions:
            star = projection if isinstance(projection, exp.Star) else None
            if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                star = projection.this
            if star is None:
                continue
            excluded = list(star.args.get("except_") or [])
            present = {column.name.lower() for column in excluded}
            for alias in schema.aliases:
                if alias.lower() not in present:
                    excluded.append(exp.column(exp.to_identifier(alias, quoted=True)))
            star.set("except_", excluded)


def _cap_limit(root: exp.Expr, max_rows: int) -> None:
    """Make the outermost LIMIT at most ``max_rows + 1`` (one more row tells that the cap cut)."""
    assert isinstance(root, exp.Query)
    cap = max_rows + 1
    limit = root.args.get("limit")
    if isinstance(limit, exp.Limit):
        value = limit.expression
        if isinstance(value, exp.Literal) and not value.is_string:
            try:
                if int(value.this) <= cap:
                    return
            except ValueError:
                pass
    root.set("limit", exp.Limit(expression=exp.Literal.number(cap)))
