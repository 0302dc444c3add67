"""A rollup rule's ``where`` evaluated in Python answers as DuckDB's SQL does (True, False or NULL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opswatch.server.rules.rollup_filter import compile_condition
from opswatch.server.rules.rollup_signals import rollup_condition
from opswatch.server.store.rollups import DIMENSIONS

TEXTS = ["a", "b", "ab", "A", "a_b", "a%"]
texts = st.sampled_from([*TEXTS, None])
projects = st.sampled_from([1, 2, None])
columns = st.sampled_from([d for d in DIMENSIONS if d != "project_id"])


def quoted(value: str | None) -> str:
    return "NULL" if value is None else "'" + value + "'"


@st.composite
def atoms(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 5)) == 0:
        op = draw(st.sampled_from(["=", "<>", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]))
        value = draw(projects)
        if op.endswith("NULL"):
            return f"project_id {op}"
        if "IN" in op:
            return f"project_id {op} ({', '.join('NULL' if v is None else str(v) for v in draw(st.lists(projects, min_size=1, max_size=3)))})"
        return f"projectId {op} {'NULL' if value is None else value}"
    column = draw(columns)
    op = draw(
        st.sampled_from(
            [
                "=",
                "<>",
                "!=",
                "IN",
                "NOT IN",
                "LIKE",
                "NOT LIKE",
                "ILIKE",
                "NOT ILIKE",
                "IS NULL",
                "IS NOT NULL",
            ]
        )
    )
    if op.endswith("NULL"):
        return f"{column} {op}"
    if "IN" in op and "LIKE" not in op:
        return (
            f"{column} {op} ({', '.join(quoted(v) for v in draw(st.lists(texts, min_size=1, max_size=3)))})"
        )
    if "LIKE" in op:
        return f"{column} {op} {quoted(draw(st.sampled_from(['a%', '%b', '_', 'a_', '%', 'A%', 'ab'])))}"
    return f"{column} {op} {quoted(draw(texts))}"


conditions = st.recursive(
    atoms(),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) AND ({b})", inner, inner),
        st.builds(lambda a, b: f"{a} OR {b}", inner, inner),
        st.builds(lambda a: f"NOT ({a})", inner),
    ),
    max_leaves=5,
)
rows = st.tuples(projects, texts, texts, texts, texts, texts)


@pytest.fixture(scope="module")
def conn() -> Iterator[Any]:
    connection = duckdb.connect()
    yield connection
    connection.close()


@settings(max_examples=400, deadline=None)
@given(conditions, st.lists(rows, min_size=1, max_size=5))
def test_it_answers_a_condition_as_sql_does(conn: Any, where: str, sample: list[tuple[Any, ...]]) -> None:
    checked = rollup_condition(where)
    assert checked is not None, where
    python = compile_condition(checked)
    assert python is not None, checked
    names = ", ".join(f"?::{'INTEGER' if d == 'project_id' else 'VARCHAR'} AS {d}" for d in DIMENSIONS)
    for row in sample:
        expected = conn.execute(f"SELECT ({checked}) FROM (SELECT {names})", list(row)).fetchone()[0]
        assert python(row) is expected, (checked, row)


@pytest.mark.parametrize(
    "where",
    [
        "project_id = '1'",
        "service = 1",
        "service LIKE 'a\\%'",
        "service ILIKE 'é%'",
        "'a' = 'a'",
        "service = operation",
    ],
)
def test_it_leaves_to_sql_what_python_would_answer_differently(where: str) -> None:
    checked = rollup_condition(where)
    assert checked is None or compile_condition(checked) is None
