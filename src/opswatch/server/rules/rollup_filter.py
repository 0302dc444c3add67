"""A rollup ``where`` as a Python function over a row of dimensions, with SQL's three-valued logic.

``RollupSource`` reads a window's rollup once, split by every dimension, and answers each rule from
those rows in Python (one query per window per round instead of one per rule). That needs the rule's
condition as Python: ``compile_condition`` turns the checked sqlglot tree into a function of the row
answering True, False or None (SQL's unknown), exactly as SQL would:

* ``=``/``!=`` and ``IN`` compare a dimension with literals of its own type (text with text,
  ``project_id`` with whole numbers); NULL on either side is unknown; ``x IN (..)`` is unknown when
  nothing matched and the list holds a NULL.
* ``LIKE``/``ILIKE`` with ``%`` and ``_`` (``ILIKE`` on ASCII patterns, compared in lower case).
* ``IS [NOT] NULL``, ``NOT``, ``AND``, ``OR`` (Kleene's logic), ``TRUE``/``FALSE``.

Anything else (a literal of another type, which SQL would cast; a pattern with a backslash, which
ClickHouse reads as an escape and DuckDB does not; a comparison of two literals) answers None from
``compile_condition``: such a rule reads the rollup with its own SQL statement instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import sqlglot
from sqlglot import exp

from ..query import DIALECT
from ..store.rollups import DIMENSIONS

Row = Sequence[Any]
Condition = Callable[[Row], bool | None]

_INTEGER_DIMENSIONS: Final = frozenset({"project_id"})


class _Unsupported(Exception):
    pass


def compile_condition(sql: str) -> Condition | None:
    """``sql`` (a condition over the dimensions, as ``rollup_signals.rollup_condition`` writes it) as a
    function of a row of ``DIMENSIONS``, or None when it cannot be evaluated exactly in Python."""
    try:
        return _compile(sqlglot.parse_one(sql, read=DIALECT))
    except (_Unsupported, sqlglot.errors.SqlglotError):
        return None


def _compile(node: Any) -> Condition:
    if node.args.get("negate"):  # ``NOT LIKE``, ``NOT IN``, ``IS NOT`` as one node
        positive = node.copy()
        positive.set("negate", False)
        inner = _compile(positive)
        return lambda row: _not(inner(row))
    if isinstance(node, exp.Paren):
        return _compile(node.this)
    if isinstance(node, exp.Boolean):
        constant = bool(node.this)
        return lambda row: constant
    if isinstance(node, exp.Not):
        inner = _compile(node.this)
        return lambda row: _not(inner(row))
    if isinstance(node, (exp.And, exp.Or)):
        left, right = _compile(node.left), _compile(node.right)
        if isinstance(node, exp.And):
            return lambda row: _and(left(row), right(row))
        return lambda row: _or(left(row), right(row))
    if isinstance(node, exp.Is):
        if not isinstance(node.expression, exp.Null):
            raise _Unsupported
        at = _column(node.this)
        return lambda row: row[at] is None
    if isinstance(node, (exp.EQ, exp.NEQ)):
        at = _column(node.this)
        value = _literal(node.expression, DIMENSIONS[at])
        if value is None:
            return lambda row: None
        if isinstance(node, exp.EQ):
            return lambda row: None if row[at] is None else row[at] == value
        return lambda row: None if row[at] is None else row[at] != value
    if isinstance(node, exp.In):
        at = _column(node.this)
        values = [_literal(item, DIMENSIONS[at]) for item in node.expressions]
        choices = {value for value in values if value is not None}
        has_null = any(value is None for value in values)
        return lambda row: _in(row[at], choices, has_null)
    if isinstance(node, (exp.Like, exp.ILike)):
        at = _column(node.this)
        if DIMENSIONS[at] in _INTEGER_DIMENSIONS:
            raise _Unsupported
        pattern = _literal(node.expression, DIMENSIONS[at])
        if pattern is None:
            return lambda row: None
        insensitive = isinstance(node, exp.ILike)
        if "\\" in pattern or (insensitive and not pattern.isascii()):
            raise _Unsupported
        regex = _like_regex(pattern.lower() if insensitive else pattern)
        if insensitive:
            return lambda row: None if row[at] is None else regex.fullmatch(row[at].lower()) is not None
        return lambda row: None if row[at] is None else regex.fullmatch(row[at]) is not None
    raise _Unsupported


def _column(node: exp.Expression) -> int:
    if not isinstance(node, exp.Column) or node.table or node.name not in DIMENSIONS:
        raise _Unsupported
    return DIMENSIONS.index(node.name)


def _literal(node: exp.Expression, dimension: str) -> Any:
    """The literal's value if it has the dimension's type (None for NULL); ``_Unsupported`` otherwise."""
    if isinstance(node, exp.Null):
        return None
    negative = isinstance(node, exp.Neg)
    if negative:
        node = node.this
    if not isinstance(node, exp.Literal):
        raise _Unsupported
    if dimension in _INTEGER_DIMENSIONS:
        if node.is_string or not re.fullmatch(r"\d+", node.this):
            raise _Unsupported
        return -int(node.this) if negative else int(node.this)
    if not node.is_string or negative:
        raise _Unsupported
    return str(node.this)


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = ("." if char == "_" else ".*" if char == "%" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def _and(left: bool | None, right: bool | None) -> bool | None:
    if left is False or right is False:
        return False
    if left is None or right is None:
        return None
    return True


def _or(left: bool | None, right: bool | None) -> bool | None:
    if left is True or right is True:
        return True
    if left is None or right is None:
        return None
    return False


def _in(value: Any, choices: set[Any], has_null: bool) -> bool | None:
    if value is None:
        return None
    if value in choices:
        return True
    return None if has_null else False
