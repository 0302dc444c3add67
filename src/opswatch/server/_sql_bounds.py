"""Values a query builds from constants, bounded before the query runs.

DuckDB builds a list or a string in one piece: ``range(200000000)`` allocates its 200 M elements at once,
outside the database's ``memory_limit`` and where an interrupt cannot stop it (measured: 14 GB and a
minute, for a query that was meant to be stopped after 30 s). No runtime limit catches that, so
``check_generated_sizes`` refuses, by reading the checked tree, every call whose size is not a constant
within ``limits.QUERY_MAX_GENERATED``:

* ``range``/``generate_series``: integer constants only; at most that many elements;
* ``repeat(value, n)``: ``n`` a constant; the result (the value's length times ``n``, a column's value
  counted as 1,000) at most that many characters or elements;
* ``lpad``/``rpad``, ``list_resize``/``array_resize``, ``bar``: a constant size within the bound;
* ``printf``/``format``: a constant format whose widths are within the bound.
"""

from __future__ import annotations

import math
import re
from typing import Final

from sqlglot import exp

from . import limits
from .store.base import QueryRefused

#: The size a column's value (or any other non-constant value) is counted as in ``repeat``.
_UNKNOWN_SIZE: Final = 1_000
_WIDTH: Final = re.compile(r"[0-9]+")


def check_generated_sizes(root: exp.Expr, bound: int = limits.QUERY_MAX_GENERATED) -> None:
    """Raise ``QueryRefused`` for a call in ``root`` that may build a value past ``bound`` (see above)."""
    for node in root.find_all(exp.Func):
        if isinstance(node, exp.GenerateSeries):
            _check_series(node, bound)
        elif isinstance(node, exp.Repeat):
            _size(node, bound)
        elif isinstance(node, exp.Pad):
            _constant_at_most(node.args.get("expression"), bound, "lpad/rpad")
        elif isinstance(node, exp.Format):
            _check_format(node.this, bound, "format")
        elif isinstance(node, exp.Anonymous):
            name = str(node.name).lower()
            arguments = node.expressions
            if name in ("list_resize", "array_resize") and len(arguments) >= 2:
                _constant_at_most(arguments[1], bound, name)
            elif name == "bar" and len(arguments) >= 4:
                _constant_at_most(arguments[3], bound, name)
            elif name in ("printf", "format") and arguments:
                _check_format(arguments[0], bound, name)


def _integer(node: exp.Expr | None) -> int | None:
    """The value of an integer constant (``5``, ``-5``, ``(5)``, ``2e8``); None for anything else."""
    if isinstance(node, exp.Paren):
        return _integer(node.this)
    if isinstance(node, exp.Neg):
        value = _integer(node.this)
        return None if value is None else -value
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            number = float(node.this)
        except ValueError:
            return None
        if math.isfinite(number) and number == int(number):
            return int(number)
    return None


def _refuse(name: str, bound: int) -> QueryRefused:
    return QueryRefused(
        f"{name}() may build a value of more than {bound:,} elements or characters; give it integer "
        f"constants within that (the query limit QUERY_MAX_GENERATED)"
    )


def _check_series(node: exp.GenerateSeries, bound: int) -> None:
    name = "range/generate_series"
    start = _integer(node.args.get("start")) if node.args.get("start") is not None else 0
    end = _integer(node.args.get("end"))
    step = _integer(node.args.get("step")) if node.args.get("step") is not None else 1
    if start is None or end is None or step is None:
        raise _refuse(name, bound)
    if step == 0 or (end - start) // step + 1 > bound:
        raise _refuse(name, bound)


def _constant_at_most(node: exp.Expr | None, bound: int, name: str) -> None:
    value = _integer(node)
    if value is None or value > bound:
        raise _refuse(name, bound)


def _size(node: exp.Expr, bound: int) -> int:
    """The most characters or elements ``node`` can hold, when bounded; raises past ``bound``."""
    if isinstance(node, exp.Literal) and node.is_string:
        return len(node.this)
    if isinstance(node, exp.Array):
        return len(node.expressions)
    if isinstance(node, exp.Repeat):
        times = _integer(node.args.get("times"))
        if times is None:
            raise _refuse("repeat", bound)
        size = _size(node.this, bound) * max(times, 0)
        if size > bound:
            raise _refuse("repeat", bound)
        return size
    return _UNKNOWN_SIZE


def _check_format(node: exp.Expr | None, bound: int, name: str) -> None:
    if not (isinstance(node, exp.Literal) and node.is_string):
        raise QueryRefused(f"{name}() takes a constant format text here")
    if any(int(width) > bound for width in _WIDTH.findall(node.this)):
        raise _refuse(name, bound)
