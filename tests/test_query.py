"""The SQL layer: the seed's queries as written, what is refused and why, rewrites, limits."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events_cast import CAMPAIGN_SUCCESS, TOP_CHURCHES, TOTAL_DONATIONS, donations_month, log_line
from opswatch.server import limits
from opswatch.server.query import check_sql, jsonable, run_query, truncation_notice
from opswatch.server.store.base import QueryError, QueryRefused, QueryTimeout, SchemaInfo
from opswatch.server.store.duckdb import DuckDBStore

#: A schema with no camelCase aliases, as a store without them (ClickHouse later) would describe itself.
PLAIN = SchemaInfo(tables=("logs", "events"), columns=("level", "church_id", "amount", "campaign_name"), aliases={})


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return donations_month(3000)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, month: list[dict[str, Any]]) -> Iterator[DuckDBStore]:
    path: Path = tmp_path_factory.mktemp("query") / "events.duckdb"
    with DuckDBStore(path) as opened:
        opened.append(month)
        yield opened


def test_it_runs_the_seeds_total_donations_query_as_written(store: DuckDBStore, month: list[dict[str, Any]]) -> None:
    expected = sum(
        r["amount"]
        for r in month
        if r["operation"] == "metrics.donation.completed" and r["timestamp"] > "2025-11-01T00:00:00.000Z"
    )
    result = run_query(store, TOTAL_DONATIONS)
    assert result.columns == ["total_donations"]
    assert result.rows[0][0] == pytest.approx(expected)


def test_it_runs_the_seeds_campaign_success_query_as_written(store: DuckDBStore, month: list[dict[str, Any]]) -> None:
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in month:
        if r["operation"] == "metrics.email.campaign_sent":
            pair = sums[(r["campaign_id"], r["campaign_name"])]
            pair[0] += r["success_count"]
            pair[1] += r["recipient_count"]
    expected = {key: s / n * 100 for key, (s, n) in sums.items()}
    result = run_query(store, CAMPAIGN_SUCCESS)
    assert result.columns == ["campaignId", "campaignName", "success_rate"]
    assert {(a, b): pytest.approx(rate) for a, b, rate in result.rows} == expected


def test_it_runs_the_seeds_top_churches_query_as_written(store: DuckDBStore, month: list[dict[str, Any]]) -> None:
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for r in month:
        if r["operation"] == "metrics.donation.completed":
            totals[r["church_id"]][0] += 1
            totals[r["church_id"]][1] += r["amount"]
    expected = sorted(((c, int(n), t) for c, (n, t) in totals.items()), key=lambda row: -row[2])[:10]
    result = run_query(store, TOP_CHURCHES)
    assert result.columns == ["churchId", "donation_count", "total_amount"]
    assert [(c, n) for c, n, _ in result.rows] == [(c, n) for c, n, _ in expected]
    assert [t for _, _, t in result.rows] == pytest.approx([t for _, _, t in expected])


def test_it_answers_events_as_well_as_logs(store: DuckDBStore, month: list[dict[str, Any]]) -> None:
    assert run_query(store, "SELECT count(*) FROM events").rows == [(len(month),)]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("", "no SQL given"),
        ("SELECT 1; SELECT 2", "only one statement"),
        ("DELETE FROM logs", "not DELETE"),
        ("INSERT INTO logs VALUES (1)", "not INSERT"),
        ("UPDATE logs SET level = 'x'", "not UPDATE"),
        ("DROP VIEW logs", "not DROP"),
        ("CREATE TABLE x AS SELECT 1", "not CREATE"),
        ("PRAGMA database_list", "not PRAGMA"),
        ("SET threads = 1", "not SET"),
        ("ATTACH 'other.db' AS other", "not ATTACH"),
        ("COPY logs TO 'out.csv'", "not COPY"),
        ("INSTALL httpfs", "not INSTALL"),
        ("LOAD httpfs", "not LOAD"),
        ("SELECT * INTO copy FROM logs", "INTO is not"),
        ("SELECT * FROM read_csv('/etc/passwd')", "table functions"),
        ("SELECT * FROM read_parquet('s3://bucket/x.parquet')", "table functions"),
        ("SELECT * FROM query('SELECT 1')", "table functions"),
        ("SELECT * FROM range(10)", "table functions"),
        ("SELECT * FROM 'events.csv'", "unknown table"),
        ("SELECT * FROM event_rows", "unknown table 'event_rows'"),
        ("SELECT * FROM duckdb_settings()", "table functions"),
        ("SELECT * FROM main.logs", "qualified table names"),
        ("SELECT * FROM other.main.logs", "qualified table names"),
        ("SELECT read_text('/etc/passwd')", "read_text is not allowed"),
        ("SELECT level FROM logs WHERE EXISTS (SELECT * FROM glob('/*'))", "table functions"),
        ("SELECT current_setting('threads')", "current_setting is not allowed"),
        ("SELECT FROM WHERE", "does not parse"),
        # a CTE's name lets nothing through outside its scope: these read DuckDB's catalog views
        ("SELECT * FROM (WITH duckdb_databases AS (SELECT 1) SELECT 1) s, duckdb_databases", "unknown table"),
        ("WITH sqlite_master AS (SELECT * FROM sqlite_master) SELECT * FROM sqlite_master", "unknown table"),
        ("WITH a AS (SELECT * FROM event_rows), event_rows AS (SELECT 1) SELECT * FROM a", "unknown table"),
        ("WITH RECURSIVE event_rows AS (SELECT * FROM event_rows UNION ALL SELECT 1) SELECT 1", "unknown table"),
    ],
)
def test_it_refuses_what_is_not_a_single_read_only_select(sql: str, reason: str) -> None:
    with pytest.raises(QueryRefused, match=reason):
        check_sql(sql, PLAIN)


def test_it_refuses_sql_past_the_length_limit() -> None:
    sql = "SELECT 1" + " " * limits.QUERY_MAX_SQL_CHARS
    with pytest.raises(QueryRefused, match="over the limit"):
        check_sql(sql, PLAIN)


def test_it_allows_ctes_subqueries_and_set_operations() -> None:
    sql = (
        "WITH top AS (SELECT church_id, sum(amount) AS total FROM logs GROUP BY 1) "
        "SELECT * FROM top WHERE total > (SELECT avg(total) FROM top) "
        "UNION ALL SELECT church_id, 0 FROM events"
    )
    assert "WITH top AS" in check_sql(sql, PLAIN).sql


@pytest.mark.parametrize(
    "sql",
    [
        "WITH a AS (SELECT 1 AS n), b AS (SELECT n FROM a) SELECT * FROM b",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t",
        "SELECT * FROM (WITH a AS (SELECT level FROM logs) SELECT * FROM a) s",
        "WITH a AS (SELECT 1 AS n) SELECT * FROM (SELECT * FROM a) s WHERE n IN (SELECT n FROM a)",
    ],
)
def test_it_lets_a_query_read_its_ctes_where_they_are_in_scope(sql: str) -> None:
    assert check_sql(sql, PLAIN).sql


def test_it_finds_snake_case_fields_by_their_camel_case_names() -> None:
    checked = check_sql("SELECT churchId, campaignName FROM logs l WHERE l.churchId = 'c-1'", PLAIN)
    assert checked.renamed == {"churchId": "church_id", "campaignName": "campaign_name"}
    assert checked.sql.startswith("SELECT church_id, campaign_name FROM logs AS l WHERE l.church_id = 'c-1'")


def test_it_leaves_names_the_query_defines_alone() -> None:
    checked = check_sql("SELECT sum(amount) AS totalAmount FROM logs ORDER BY totalAmount", PLAIN)
    assert checked.renamed == {}
    assert "ORDER BY totalAmount" in checked.sql


def test_it_shows_each_attribute_once_in_select_star(store: DuckDBStore) -> None:
    result = run_query(store, "SELECT * FROM logs LIMIT 1")
    assert "church_id" in result.columns
    assert "churchId" not in result.columns
    assert len(result.columns) == len(set(result.columns))
    assert "churchId" in run_query(store, "SELECT churchId, * FROM logs LIMIT 1").columns


def test_it_caps_the_rows_and_says_so(store: DuckDBStore) -> None:
    result = run_query(store, "SELECT event_id FROM logs", max_rows=25)
    assert (len(result.rows), result.truncated) == (25, True)
    notice = truncation_notice(result)
    assert notice is not None and "25 rows" in notice
    assert check_sql("SELECT 1 FROM logs LIMIT 5", PLAIN, max_rows=25).sql.endswith("LIMIT 5")
    assert check_sql("SELECT 1 FROM logs LIMIT 500", PLAIN, max_rows=25).sql.endswith("LIMIT 26")
    small = run_query(store, "SELECT event_id FROM logs LIMIT 3", max_rows=25)
    assert (len(small.rows), small.truncated, truncation_notice(small)) == (3, False, None)


def test_it_stops_a_query_at_its_time_limit(store: DuckDBStore) -> None:
    with pytest.raises(QueryTimeout, match=r"longer than 0\.2 s"):
        run_query(store, "SELECT count(*) FROM logs a, logs b, logs c", timeout=0.2)


def test_it_explains_a_query_that_fails(store: DuckDBStore) -> None:
    with pytest.raises(QueryError, match='"nosuch" not found'):
        run_query(store, "SELECT nosuch FROM logs")


@pytest.mark.parametrize(("option", "value"), [("max_rows", 0), ("max_rows", limits.QUERY_MAX_ROWS + 1),
                                               ("timeout", 0), ("timeout", limits.QUERY_MAX_TIMEOUT_SECONDS + 1)])
def test_it_refuses_limits_outside_their_range(store: DuckDBStore, option: str, value: float) -> None:
    with pytest.raises(QueryRefused, match=option):
        run_query(store, "SELECT 1", **{option: value})  # type: ignore[arg-type]


def test_it_reads_rows_as_json_values(tmp_path: Path) -> None:
    moment = datetime.datetime(2025, 11, 1, 2, 3, 4, 567000)
    assert jsonable(moment) == "2025-11-01T02:03:04.567Z"
    assert jsonable(decimal.Decimal("1.5")) == 1.5
    assert jsonable(2**100) == str(2**100)
    assert jsonable(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert jsonable({"a": [moment, b"\x01"]}) == {"a": ["2025-11-01T02:03:04.567Z", "01"]}
    with DuckDBStore(tmp_path / "events.duckdb") as store:
        store.append([log_line(1)])
        (row,) = run_query(store, "SELECT timestamp, [1, 2] AS l, {'a': 1} AS s FROM logs").rows
    assert [jsonable(v) for v in row] == ["2025-11-01T00:00:00.000Z", [1, 2], {"a": 1}]
