"""Column headers as the user wrote them: ``count(*)``, not DuckDB's ``count_star()``.

DuckDB names an unaliased expression after its own rewrite of it. For the table and CSV outputs,
``expression_headers`` puts back the text of each select-list item that has no alias and is not a plain
column, taken from the SQL itself (sqlglot's tokenizer gives each item's place). It gives up, keeping
the server's names, whenever anything does not line up: no sqlglot (the SDK without the server extra),
SQL it cannot read, a ``*`` in the list, a count of items that differs from the answer's columns, or
an item whose text does not parse back to the same expression.
"""

from __future__ import annotations

from typing import Any

_DIALECT = "duckdb"
_END_OF_LIST = frozenset(
    {"FROM", "WHERE", "GROUP_BY", "ORDER_BY", "LIMIT", "HAVING", "UNION", "EXCEPT", "INTERSECT",
     "SEMICOLON", "QUALIFY", "WINDOW", "INTO", "FETCH", "OFFSET"}
)  # fmt: skip


def expression_headers(sql: str, columns: list[str]) -> list[str]:
    """``columns`` with each unaliased expression's header replaced by its text in ``sql``."""
    try:
        return _headers(sql, columns)
    except Exception:  # any surprise in parsing keeps the server's names
        return columns


def _headers(sql: str, columns: list[str]) -> list[str]:
    try:
        import sqlglot
        from sqlglot import exp
    except ModuleNotFoundError:
        return columns
    tree: Any = sqlglot.parse_one(sql, read=_DIALECT)
    while isinstance(tree, exp.SetOperation):
        tree = tree.left
    if not isinstance(tree, exp.Select) or len(tree.expressions) != len(columns):
        return columns
    if any(isinstance(item, exp.Star) or item.find(exp.Star) is item for item in tree.expressions):
        return columns
    texts = _item_texts(sql, sqlglot.Dialect.get_or_raise(_DIALECT).tokenize(sql))
    if len(texts) != len(columns):
        return columns
    headers = list(columns)
    for index, (item, text) in enumerate(zip(tree.expressions, texts, strict=True)):
        if isinstance(item, exp.Alias | exp.Column | exp.Star):
            continue
        if sqlglot.parse_one(text, read=_DIALECT).sql(_DIALECT) != item.sql(_DIALECT):
            return columns
        headers[index] = text
    return headers


def _item_texts(sql: str, tokens: list[Any]) -> list[str]:
    """The text of each item of the outermost select list (tokens at parenthesis depth 0)."""
    depth = 0
    start: int | None = None  # index of the first token after the outermost SELECT
    items: list[str] = []
    first: Any = None
    last: Any = None
    for index, token in enumerate(tokens):
        kind = token.token_type.name
        if kind in ("L_PAREN", "L_BRACKET", "L_BRACE"):
            depth += 1
        elif kind in ("R_PAREN", "R_BRACKET", "R_BRACE"):
            depth -= 1
        elif depth == 0 and start is None and kind == "SELECT":
            start = index + 1
            continue
        if start is None or (depth == 0 and index == start and kind in ("DISTINCT", "ALL")):
            if start is not None:
                start += 1
            continue
        if depth == 0 and (kind in _END_OF_LIST or kind == "COMMA"):
            if first is not None:
                items.append(sql[first.start : last.end + 1])
            first = last = None
            if kind != "COMMA":
                break
            continue
        first = first or token
        last = token
    else:
        if first is not None:
            items.append(sql[first.start : last.end + 1])
    return items
