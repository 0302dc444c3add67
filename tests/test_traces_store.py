"""Spans in the event store: durable and idempotent by (project, trace, span), SQL over ``spans`` through
the query guard, joined with ``logs`` on trace_id, their own retention."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opswatch.config import ConfigError
from opswatch.server.config import ServerSettings
from opswatch.server.query import run_query
from opswatch.server.store.base import QueryRefused, StoreClosed
from opswatch.server.store.duckdb import DuckDBStore
from opswatch.server.store.retention import RetentionJob
from opswatch.server.traces.model import span_row
from opswatch.server.traces.retention import SpanDeletes

NOW = 1_764_756_000.0  # 2025-12-03T10:00:00Z
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "events.duckdb", clock=lambda: NOW, idle_checkpoint_seconds=60) as opened:
        yield opened


def span(
    span_id: str,
    *,
    parent: str | None = None,
    start: float = NOW - 1,
    ms: float = 10.0,
    project: int = 1,
    trace: str = TRACE,
    **fields: Any,
) -> dict[str, Any]:
    start_ns = round(start * 1e6) * 1000
    row = span_row(
        trace_id=trace,
        span_id=span_id,
        parent_span_id=parent,
        name=fields.pop("name", "GET /donations"),
        kind=fields.pop("kind", "server"),
        start_ns=start_ns,
        end_ns=start_ns + int(ms * 1e6),
        status=fields.pop("status", "ok"),
        resource={"service": "api", "environment": "prod"},
        attributes=fields.pop("attributes", {"http.route": "/donations"}),
        received_at="2025-12-03T10:00:00.000Z",
    )
    row["project_id"] = project
    return row


def sql(store: DuckDBStore, text: str) -> list[tuple[Any, ...]]:
    return run_query(store, text).rows


def test_it_stores_spans_and_skips_a_retried_span(store: DuckDBStore) -> None:
    root = span("00f067aa0ba902b7")
    child = span("b7ad6b7169203331", parent="00f067aa0ba902b7", kind="client", ms=4.5)
    assert store.append_spans([root, child, root]) == 2
    assert store.append_spans([child]) == 0
    assert store.stats()["spans_written"] == 2
    found = sql(
        store, "SELECT span_id, parent_span_id, kind, duration_ms, service FROM spans ORDER BY span_id"
    )
    assert found == [
        ("00f067aa0ba902b7", None, "server", 10.0, "api"),
        ("b7ad6b7169203331", "00f067aa0ba902b7", "client", 4.5, "api"),
    ]


def test_it_keeps_the_same_span_ids_apart_in_two_projects(store: DuckDBStore) -> None:
    assert store.append_spans([span("00f067aa0ba902b7", project=1), span("00f067aa0ba902b7", project=2)]) == 2
    assert sql(store, "SELECT project_id FROM spans ORDER BY 1") == [(1,), (2,)]


def test_it_keeps_spans_across_a_restart_and_stays_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    with DuckDBStore(path, clock=lambda: NOW) as first:
        first.append_spans([span("00f067aa0ba902b7")])
    with DuckDBStore(path, clock=lambda: NOW) as second:
        assert second.append_spans([span("00f067aa0ba902b7")]) == 0
        assert sql(second, "SELECT count(*) FROM spans") == [(1,)]
    with DuckDBStore(path, read_only=True) as reader:
        assert sql(reader, "SELECT name FROM spans") == [("GET /donations",)]


def test_it_keeps_microseconds_and_computes_the_end(store: DuckDBStore) -> None:
    store.append_spans([span("00f067aa0ba902b7", start=NOW - 1.000_123, ms=2.5)])
    start, end = sql(store, "SELECT timestamp, end_timestamp FROM spans")[0]
    assert start.microsecond == 999_877
    assert (end - start).total_seconds() == pytest.approx(0.0025)


def test_it_answers_sql_over_spans_with_attributes_and_camel_case_names(store: DuckDBStore) -> None:
    store.append_spans([span("00f067aa0ba902b7", attributes={"http.route": "/donations/{id}", "db.rows": 3})])
    found = sql(store, """SELECT parentSpanId, attributes->>'$."http.route"', statusMessage FROM spans""")
    assert found == [(None, "/donations/{id}", None)]
    assert "end_timestamp" in run_query(store, "SELECT * FROM spans").columns


def test_it_joins_spans_with_logs_on_the_trace_id(store: DuckDBStore) -> None:
    store.append_spans([span("00f067aa0ba902b7", name="POST /donate")])
    store.append(
        [
            {
                "event_id": "e" * 32,
                "timestamp": "2025-12-03T09:59:59.005Z",
                "level": "info",
                "message": "charged",
                "trace_id": TRACE,
                "project_id": 1,
                "kind": "log",
                "received_at": "2025-12-03T10:00:00.000Z",
            },
            {
                "event_id": "f" * 32,
                "timestamp": "2025-12-03T09:59:59.005Z",
                "level": "info",
                "message": "other",
                "trace_id": "1" * 32,
                "project_id": 1,
                "kind": "log",
                "received_at": "2025-12-03T10:00:00.000Z",
            },
        ]
    )
    joined = sql(store, "SELECT s.name, l.message FROM spans s JOIN logs l ON l.trace_id = s.trace_id")
    assert joined == [("POST /donate", "charged")]


def test_the_query_guard_still_refuses_the_physical_spans_table(store: DuckDBStore) -> None:
    with pytest.raises(QueryRefused, match="unknown table 'span_rows'"):
        run_query(store, "SELECT * FROM span_rows")
    with pytest.raises(QueryRefused, match="only SELECT"):
        run_query(store, "DELETE FROM spans")


def test_span_retention_deletes_spans_older_than_its_days_and_leaves_logs(store: DuckDBStore) -> None:
    day = 86_400
    store.append_spans(
        [span("00f067aa0ba902b7", start=NOW - 15 * day), span("b7ad6b7169203331", start=NOW - 13 * day)]
    )
    store.append(
        [
            {
                "event_id": "e" * 32,
                "timestamp": "2025-11-01T00:00:00.000Z",
                "level": "info",
                "message": "old log",
                "project_id": 1,
                "kind": "log",
            }
        ]
    )
    job = RetentionJob(SpanDeletes(store), 14)
    assert job.run_once() == 1
    assert sql(store, "SELECT span_id FROM spans") == [("b7ad6b7169203331",)]
    assert sql(store, "SELECT count(*) FROM logs") == [(1,)]


def test_span_retention_is_a_setting_with_bounds() -> None:
    assert ServerSettings().spans_retention_days == 14
    assert ServerSettings.load({"OPSWATCH_SPANS_RETENTION_DAYS": "3"}).spans_retention_days == 3
    with pytest.raises(ConfigError, match="spans_retention_days"):
        ServerSettings.load({"OPSWATCH_SPANS_RETENTION_DAYS": "0"})


def test_a_read_only_store_refuses_span_writes(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    DuckDBStore(path).close()
    with DuckDBStore(path, read_only=True) as reader, pytest.raises(StoreClosed):
        reader.append_spans([span("00f067aa0ba902b7")])
