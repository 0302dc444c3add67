"""User SQL on ClickHouse: the checked DuckDB-dialect text, transpiled, and the limits it runs under.

User SQL reaches the store only through ``opswatch.server.query.run_query``, which parses and checks it
in the documented dialect (DuckDB's) and regenerates it from the checked tree. ``to_clickhouse`` parses
that text again and writes it in ClickHouse's dialect with sqlglot (``attributes->>'k'`` becomes
``JSONExtractString(attributes, 'k')``, ``::VARCHAR`` a ``CAST``, ``contains`` ``position``); nothing
the check did not see is added. It checks the ClickHouse text once more: tables only by plain name (no
``system.users``, no ``other_db.t``), no table functions (``url(...)``, ``remote(...)``, ``s3(...)``,
``file(...)``), and none of the scalar functions that reach past the tables (``FORBIDDEN_FUNCTIONS``:
``dictGet``, ``getSetting``, ``hostName`` ...), so a construct the DuckDB check lets through and
sqlglot turns into one of those is still refused. And it keeps DuckDB's answer for a missing JSON key:
``attributes->>'missing'`` and ``->'missing'`` are NULL (ClickHouse's ``JSONExtractString`` and
``JSONExtractRaw`` answer ``''``); a JSON ``null`` is NULL under ``->>`` and ``'null'`` under ``->``.

``query_settings`` are the limits, as ClickHouse's own settings, sent with the statement (never part of
the SQL text the user controls; the DuckDB-dialect check refuses a ``SETTINGS`` clause):

* ``readonly = 1``: no writes, no DDL, no settings changed by the query itself, and no table functions
  at all (ClickHouse refuses ``file()``, ``url()``, ``remote()``, ``s3()`` ... in this mode, error 164
  ``READONLY``): the engine's own wall behind the checks. The settings below travel in the same request
  as ``readonly``, which ClickHouse applies together, checked against the session's own (writable) mode;
* ``max_execution_time``: the time limit (error 159, ``QueryTimeout``);
* ``max_memory_usage``: ``limits.CLICKHOUSE_QUERY_MAX_MEMORY_BYTES``;
* ``max_result_rows``/``max_result_bytes`` with ``result_overflow_mode = 'throw'``: the row cap plus one
  (the checked SQL's outermost ``LIMIT`` is already at most that; the store cuts to the cap and says
  ``truncated``) and ``limits.CLICKHOUSE_QUERY_MAX_RESULT_BYTES``. ``throw``, not ``break``: a break on
  bytes would cut an answer without saying so; over the byte limit the query fails with a message
  naming it (``TOO_MANY_BYTES``).

What settings cannot do is keep a query away from other databases or from ``system`` tables: ClickHouse
has grants for that, not settings. Here the checks refuse every qualified name; on a real server, give
the URL's user ``SELECT`` on opswatch's database only (README, "Events in ClickHouse"), and ClickHouse
refuses the rest too (``system.users`` needs ``SHOW USERS`` even without that).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from .. import limits
from ._query import answer_size
from .base import QueryError, QueryRefused, QueryResult

#: The dialect user SQL is written and checked in (``opswatch.server.query.DIALECT``).
SOURCE_DIALECT: Final = "duckdb"

#: ClickHouse functions (lower case) that read files, dictionaries, settings or the host: refused.
FORBIDDEN_FUNCTIONS: Final = frozenset(
    {"file", "joinget", "joingetornull", "getsetting", "getsettingordefault", "getmacro", "hostname",
     "fqdn", "currentuser", "currentprofiles", "currentroles", "getserverport", "uptime",
     "filesystemavailable", "filesystemcapacity", "filesystemunreserved", "getclientheader", "sleep",
     "sleepeachrow", "throwif"}
)  # fmt: skip
FORBIDDEN_PREFIXES: Final = (
    "dictget", "dicthas", "dictisin", "url", "remote", "s3", "hdfs", "mysql", "postgres",
)  # fmt: skip


def to_clickhouse(sql: str) -> str:
    """``sql`` (one checked DuckDB-dialect statement) in ClickHouse's dialect, checked again there
    (plain table names, no table functions, no ``FORBIDDEN_FUNCTIONS``), with missing JSON keys NULL."""
    try:
        statements = [tree for tree in sqlglot.parse(sql, read=SOURCE_DIALECT) if tree is not None]
        if len(statements) != 1:
            raise QueryError(f"expected one statement, got {len(statements)}")
        text = _duckdb_meanings(statements[0]).sql(dialect="clickhouse")
    except SqlglotError as err:
        raise QueryError(f"the SQL cannot be translated for ClickHouse: {str(err).splitlines()[0]}") from None
    tree = sqlglot.parse_one(text, read="clickhouse")
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            name = _function_name(table.this) if isinstance(table.this, exp.Func) else table.this.key
            raise QueryRefused(f"table functions are not allowed ({name}); query the opswatch tables")
        if table.args.get("db") or table.args.get("catalog"):
            shown = table.sql(dialect="clickhouse")
            raise QueryRefused(f"qualified table names are not allowed ({shown}); query the opswatch tables")
    for node in tree.find_all(exp.Func):
        name = _function_name(node)
        if name in FORBIDDEN_FUNCTIONS or name.startswith(FORBIDDEN_PREFIXES):
            raise QueryRefused(f"the function {name} is not allowed (no file, network or system access)")
    return _missing_keys_null(tree) or text


def _duckdb_meanings(tree: exp.Expr) -> exp.Expr:
    """``tree`` (DuckDB's dialect) with what sqlglot writes for ClickHouse with another meaning replaced.

    * ``TIMESTAMP`` (a literal, a cast) is ``DateTime64(6, 'UTC')``, as DuckDB's, to the microsecond and
      naive UTC like the stored timestamps (sqlglot writes ``DateTime``: whole seconds, so a window bound
      ``'12:00:00.500'`` would be ``'12:00:00'``, in the server's time zone);
    * ``QUANTILE_CONT(x, q)``, ``PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY x)`` and ``MEDIAN(x)`` (which
      ClickHouse lacks, or has as an estimate) are ``quantileExactInclusiveOrNull(q)(x)``: the same
      interpolation between the two nearest values (measured equal, to the last bit or so, on sets of 1 to
      37 values at q from 0 to 1), and NULL over no rows as DuckDB's. A list of fractions gives an array
      of them; ``ORDER BY x DESC`` takes ``1 - q``.
    """
    for datatype in list(tree.find_all(exp.DataType)):
        if datatype.this in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ):
            datatype.replace(exp.DataType.build("Nullable(DateTime64(6, 'UTC'))", dialect="clickhouse"))
    for node in list(tree.find_all(exp.WithinGroup, exp.PercentileCont, exp.Median)):
        if isinstance(node, exp.Median):
            node.replace(_exact_quantile(node.this, exp.Literal.number(0.5), descending=False))
        elif isinstance(node, exp.WithinGroup):  # PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY x)
            order = node.expression
            if isinstance(node.this, exp.PercentileCont) and isinstance(order, exp.Order):
                if len(order.expressions) != 1:
                    raise QueryError("PERCENTILE_CONT ... WITHIN GROUP (ORDER BY ...) takes one expression")
                value = order.expressions[0].this
                node.replace(_exact_quantile(value, node.this.this, descending=_descending(order)))
        elif isinstance(node.expression, exp.Order):  # QUANTILE_CONT(x, q ORDER BY x), as sqlglot writes
            fraction = node.expression.this
            node.replace(_exact_quantile(node.this, fraction, descending=_descending(node.expression)))
        elif node.expression is not None:  # QUANTILE_CONT(x, q)
            node.replace(_exact_quantile(node.this, node.expression, descending=False))
    return tree


def _exact_quantile(value: exp.Expr, fraction: exp.Expr, *, descending: bool) -> exp.Expr:
    """``quantileExactInclusiveOrNull(q)(value)`` (an array of them for a list of fractions): ClickHouse
    takes only constant fractions."""
    fractions = fraction.expressions if isinstance(fraction, exp.Array) else [fraction]
    calls: list[str] = []
    for item in fractions:
        if not isinstance(item, exp.Literal) or item.is_string:
            shown = item.sql(dialect=SOURCE_DIALECT)
            raise QueryError(f"a quantile's fraction must be a constant number on ClickHouse, got {shown}")
        level = 1 - Decimal(item.this) if descending else Decimal(item.this)
        calls.append(f"quantileExactInclusiveOrNull({level})({value.sql(dialect='clickhouse')})")
    text = f"[{', '.join(calls)}]" if isinstance(fraction, exp.Array) else calls[0]
    return sqlglot.parse_one(text, read="clickhouse")


def _descending(order: exp.Order) -> bool:
    return bool(order.expressions and order.expressions[0].args.get("desc"))


def _function_name(node: exp.Func) -> str:
    return str(node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _missing_keys_null(tree: exp.Expr) -> str | None:
    """The statement with each JSON extraction NULL where DuckDB's is (None when it has none).

    ``JSONExtractString(x, path)`` (``->>``) answers ``''`` for a missing key and for a JSON ``null``,
    where DuckDB answers NULL: it becomes ``JSONExtract(x, path, 'Nullable(String)')``, which answers as
    DuckDB does for every kind of value (measured: text unquoted, numbers, booleans, objects and arrays as
    JSON text, NULL for ``null`` and for a missing key or index). ``JSONExtractRaw`` (``->``) answers
    ``''`` only for a missing key (a stored ``""`` is ``'""'``): it becomes ``nullIf(..., '')``. Each
    argument is still written once, so nested extractions grow the text linearly.
    """
    found = list(tree.find_all(exp.JSONExtractScalar, exp.JSONExtract))
    if not found:
        return None
    for node in reversed(found):  # descendants come after their ancestors in a depth-first walk
        call = node.sql(dialect="clickhouse")
        if isinstance(node, exp.JSONExtractScalar):
            wrapped = f"JSONExtract({call[call.index('(') + 1 : -1]}, 'Nullable(String)')"
        else:
            wrapped = f"nullIf({call}, '')"
        node.replace(sqlglot.parse_one(wrapped, read="clickhouse"))
    return tree.sql(dialect="clickhouse")


def query_settings(
    *,
    max_rows: int,
    timeout: float,
    max_memory_bytes: int = limits.CLICKHOUSE_QUERY_MAX_MEMORY_BYTES,
    max_result_bytes: int = limits.CLICKHOUSE_QUERY_MAX_RESULT_BYTES,
) -> dict[str, Any]:
    """ClickHouse settings that hold a user query to the row cap, the time, memory and result limits."""
    return {
        "readonly": 1,
        "max_execution_time": max(timeout, 0.001),
        "timeout_overflow_mode": "throw",
        "max_memory_usage": max_memory_bytes,
        "max_result_rows": max_rows + 1,
        "max_result_bytes": max_result_bytes,
        "result_overflow_mode": "throw",
    }


def capped(columns: list[str], rows: list[tuple[Any, ...]], max_rows: int, max_bytes: int) -> QueryResult:
    """The answer cut at the row cap or the size cap (``answer_size``, as DuckDB's answers are)."""
    size = 0
    for count, row in enumerate(rows[: max_rows + 1]):
        size += answer_size(row)
        if size > max_bytes:
            return QueryResult(columns, rows[:count], truncated=True, cut_by="bytes")
    if len(rows) > max_rows:
        return QueryResult(columns, rows[:max_rows], truncated=True, cut_by="rows")
    return QueryResult(columns, rows)
