"""The span insert is prepared once per text on the writer's connection (``store.spans.Prepared``)."""

from __future__ import annotations

import duckdb
import pytest

from opswatch.server.store.spans import Prepared

INSERT = "INSERT INTO t SELECT unnest(string_split($1, ','))"


def _values(conn: duckdb.DuckDBPyConnection) -> list[object]:
    return sorted(row[0] for row in conn.execute("SELECT v FROM t").fetchall())


def test_it_prepares_a_text_once_and_again_only_when_the_text_changes() -> None:
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (v VARCHAR)")
    prepared = Prepared()
    prepared.execute(conn, "insert", INSERT, ["a,b"])
    prepared.execute(conn, "insert", INSERT, ["c"])
    prepared.execute(conn, "insert", "INSERT INTO t SELECT upper(unnest(string_split($1, ',')))", ["d"])
    names = conn.execute("SELECT name FROM duckdb_prepared_statements()").fetchall()
    assert len(names) == 1  # the first text's statement was deallocated
    assert _values(conn) == ["D", "a", "b", "c"]
    found = prepared.execute(
        conn, "lookup", "SELECT count(*) FROM t WHERE v IN (SELECT unnest($1::VARCHAR[]))", [["a", "D"]]
    )
    assert found.fetchall() == [(2,)]
    assert len(conn.execute("SELECT name FROM duckdb_prepared_statements()").fetchall()) == 2  # one per slot


def test_it_keeps_working_after_a_rolled_back_failure() -> None:
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (v INTEGER)")
    prepared = Prepared()
    conn.execute("BEGIN TRANSACTION")
    with pytest.raises(duckdb.Error):
        prepared.execute(conn, "insert", INSERT, ["1,x"])  # 'x' is not an integer: the transaction fails
    conn.execute("ROLLBACK")
    prepared.execute(conn, "insert", INSERT, ["2,3"])
    assert _values(conn) == [2, 3]


def test_it_prepares_again_on_another_connection() -> None:
    prepared = Prepared()
    for _ in range(2):
        conn = duckdb.connect()
        conn.execute("CREATE TABLE t (v VARCHAR)")
        prepared.execute(conn, "insert", INSERT, ["a"])
        assert _values(conn) == ["a"]
