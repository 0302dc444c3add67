"""User SQL on ClickHouse: the checked DuckDB-dialect text, transpiled, and the limits it runs under.

User SQL reaches the store only through ``opswatch.server.query.run_query``, which parses and checks it
in the documented dialect (DuckDB's) and regenerates it from the checked tree. ``to_clickhouse`` parses
that text again and writes it in ClickHouse's dialect with sqlglot (``attributes->>'k'`` becomes
``JSONExtractString(attributes, 'k')``, ``::VARCHAR`` a ``CAST``, ``contains`` ``position``); nothing
the check did not see is added. ``query_settings`` are the limits, as ClickHouse's own settings, sent
with the statement (never part of the SQL text the user controls):

ClickHouse has scalar functions that reach past the tables (``file``, ``dictGet``, ``getSetting`` ...);
``to_clickhouse`` refuses those the DuckDB-side check does not know (``FORBIDDEN_FUNCTIONS``). On a real
server, also give opswatch's query user grants on its own database only (README).

* ``readonly = 2``: no writes, no DDL (2 rather than 1 so the statement may carry the settings below;
  the user's SQL cannot carry a ``SETTINGS`` clause of its own: the DuckDB-dialect check refuses it);
* ``max_execution_time``: the time limit (error 159, ``QueryTimeout``);
* ``max_memory_usage``: ``limits.CLICKHOUSE_QUERY_MAX_MEMORY_BYTES``;
* ``max_result_rows``/``max_result_bytes`` with ``result_overflow_mode = 'throw'``: the row cap plus one
  (the checked SQL's outermost ``LIMIT`` is already at most that; the store cuts to the cap and says
  ``truncated``) and ``limits.CLICKHOUSE_QUERY_MAX_RESULT_BYTES``. ``throw``, not ``break``: a break on
  bytes would cut an answer without saying so; over the byte limit the query fails with a message
  naming it (``TOO_MANY_BYTES``).
"""

from __future__ import annotations

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
    """``sql`` (one checked DuckDB-dialect statement) in ClickHouse's dialect."""
    try:
        statements = sqlglot.transpile(sql, read=SOURCE_DIALECT, write="clickhouse")
    except SqlglotError as err:
        raise QueryError(f"the SQL cannot be translated for ClickHouse: {str(err).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryError(f"expected one statement, got {len(statements)}")
    text = statements[0]
    for node in sqlglot.parse_one(text, read="clickhouse").find_all(exp.Func):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        if name in FORBIDDEN_FUNCTIONS or name.startswith(FORBIDDEN_PREFIXES):
            raise QueryRefused(f"the function {name} is not allowed (no file, network or system access)")
    return text


def query_settings(
    *,
    max_rows: int,
    timeout: float,
    max_memory_bytes: int = limits.CLICKHOUSE_QUERY_MAX_MEMORY_BYTES,
    max_result_bytes: int = limits.CLICKHOUSE_QUERY_MAX_RESULT_BYTES,
) -> dict[str, Any]:
    """ClickHouse settings that hold a user query to the row cap, the time, memory and result limits."""
    return {
        "readonly": 2,
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
