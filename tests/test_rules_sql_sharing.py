"""SQL rules with the same statement over the same window share one run, and only when that cannot
change an answer: the store has not written since, and the statement reads no clock, random source
or ``spans``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opswatch.server.rules.evaluate import evaluate
from opswatch.server.rules.load import rule_from_mapping
from opswatch.server.rules.model import Evaluation
from opswatch.server.rules.signals import EventQuerySource
from opswatch.server.store.base import QueryResult, SchemaInfo
from opswatch.server.store.duckdb import DuckDBStore
from opswatch.server.traces.model import span_row
from rules_cast import T0, request

PER_SERVICE = "SELECT service, COUNT(*) AS value FROM logs GROUP BY service"


class Counting:
    """The real store, counting the statements run on it."""

    def __init__(self, store: DuckDBStore) -> None:
        self.store = store
        self.statements: list[str] = []

    @property
    def data_version(self) -> int:
        return self.store.data_version

    def describe(self) -> SchemaInfo:
        return self.store.describe()

    def query(self, sql: str, **limits: Any) -> QueryResult:
        self.statements.append(sql)
        return self.store.query(sql, **limits)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "events.duckdb") as opened:
        opened.append([request(T0 + 10 + i) for i in range(3)] + [request(T0 + 20, service="search")])
        yield opened


def _sql_rule(name: str, sql: str, window: str = "1m", **options: Any) -> Any:
    return rule_from_mapping({"name": name, "sql": sql, "window": window, "critical": "> 1e9"}, **options)


def _values(evaluation: Evaluation) -> dict[str, float | None]:
    assert evaluation.error is None, evaluation.error
    return {o.group.get("service", ""): o.value for o in evaluation.observations}


def test_it_runs_a_statement_two_rules_share_once_per_window(store: DuckDBStore) -> None:
    counting = Counting(store)
    source = EventQuerySource(counting)
    warning, critical = _sql_rule("warning", PER_SERVICE), _sql_rule("critical", PER_SERVICE)
    first = evaluate(warning, source, T0 + 90, ingest_delay=30)
    second = evaluate(critical, source, T0 + 90, ingest_delay=30)
    assert _values(first) == _values(second) == {"checkout": 3.0, "search": 1.0}
    assert len(counting.statements) == 1
    longer = evaluate(_sql_rule("longer", PER_SERVICE, window="2m"), source, T0 + 90, ingest_delay=30)
    assert _values(longer) == {"checkout": 3.0, "search": 1.0} and len(counting.statements) == 2
    evaluate(warning, source, T0 + 150, ingest_delay=30)  # the next round's window: run again
    assert len(counting.statements) == 3


def test_it_runs_the_statement_again_once_the_store_has_written(store: DuckDBStore) -> None:
    counting = Counting(store)
    source = EventQuerySource(counting)
    assert _values(evaluate(_sql_rule("a", PER_SERVICE), source, T0 + 90, ingest_delay=30))["search"] == 1.0
    store.append([request(T0 + 30, service="search")])  # a late event inside the same window
    assert _values(evaluate(_sql_rule("b", PER_SERVICE), source, T0 + 90, ingest_delay=30))["search"] == 2.0
    assert len(counting.statements) == 2


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) + random() * 0 AS value FROM logs",
        "SELECT COUNT(*) AS value, epoch(now()) - epoch(now()) AS zero FROM logs",
        "SELECT COUNT(*) AS value, gen_random_uuid() AS tag FROM logs",
        "SELECT COUNT(*) AS value, CAST(current_date AS VARCHAR) AS day FROM logs",
    ],
)
def test_it_runs_a_statement_that_reads_a_clock_or_a_random_source_for_each_rule(
    store: DuckDBStore, sql: str
) -> None:
    counting = Counting(store)
    source = EventQuerySource(counting)
    for name in ("a", "b"):
        assert evaluate(_sql_rule(name, sql), source, T0 + 90, ingest_delay=30).error is None
    assert len(counting.statements) == 2


def test_it_runs_a_statement_that_reads_spans_for_each_rule(store: DuckDBStore) -> None:
    def span(span_id: str) -> dict[str, Any]:
        start_ns = int(T0 * 1e9)
        row = span_row(
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id=span_id, parent_span_id=None,
            name="GET /donations", kind="server", start_ns=start_ns, end_ns=start_ns + 10**7, status="ok",
            resource={"service": "api"}, attributes={}, received_at="2026-11-29T12:00:01.000Z",
        )  # fmt: skip
        row["project_id"] = 1
        return row

    store.append_spans([span("00f067aa0ba902b7")])
    counting = Counting(store)
    source = EventQuerySource(counting)
    sql = "SELECT (SELECT COUNT(*) FROM spans) AS value FROM logs LIMIT 1"
    rules = [_sql_rule(name, sql, schema=store.describe()) for name in ("a", "b")]
    assert _values(evaluate(rules[0], source, T0 + 90, ingest_delay=30)) == {"": 1.0}
    store.append_spans([span("b7ad6b7169203331")])  # span writes do not move the store's data version
    assert _values(evaluate(rules[1], source, T0 + 90, ingest_delay=30)) == {"": 2.0}
    assert len(counting.statements) == 2


def test_it_runs_a_failed_statement_again_for_each_rule(store: DuckDBStore) -> None:
    counting = Counting(store)
    source = EventQuerySource(counting)
    sql = "SELECT CAST(level AS INTEGER) AS value FROM logs"  # 'info' is not a number
    for name in ("a", "b"):
        evaluation = evaluate(_sql_rule(name, sql), source, T0 + 90, ingest_delay=30)
        assert evaluation.error is not None and "info" in evaluation.error
    assert len(counting.statements) == 2
