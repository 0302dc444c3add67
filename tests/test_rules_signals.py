"""Rule signals computed over a real DuckDB event store, through the query path and its checks."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import require_service
from opswatch.server.rules.evaluate import evaluate
from opswatch.server.rules.load import rule_from_mapping
from opswatch.server.rules.signals import EventQuerySource
from opswatch.server.store.duckdb import DuckDBStore
from rules_cast import T0, request


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "events.duckdb") as opened:
        records = []
        # checkout: 10 requests in the window, 3 errors, durations 100..1000 ms, 4 distinct users.
        for i in range(10):
            level = "error" if i < 3 else "info"
            records.append(
                request(T0 + 10 + i, level=level, duration_ms=100.0 * (i + 1), user_id=f"u{i % 4}", amount=i)
            )
        # search: 4 requests, no errors.
        records += [request(T0 + 20 + i, service="search", duration_ms=50.0) for i in range(4)]
        # Outside the window: before it, and after its end (within the ingest delay).
        records.append(request(T0 - 100, level="error"))
        records.append(request(T0 + 70, level="error"))
        opened.append(records)
        yield opened


def _evaluate(store: DuckDBStore, **keys: Any) -> dict[str, tuple[float | None, int | None]]:
    """``{service or '': (value, events)}`` of a rule over [T0, T0 + 60)."""
    rule = rule_from_mapping({"name": "r", "window": "1m", "critical": "> 1e9", **keys})
    evaluation = evaluate(rule, EventQuerySource(store), T0 + 90, ingest_delay=30)
    assert evaluation.error is None, evaluation.error
    assert (evaluation.window_start, evaluation.window_end) == (T0, T0 + 60)
    return {o.group.get("service", ""): (o.value, o.events) for o in evaluation.observations}


def test_it_counts_events_in_the_window_ending_the_ingest_delay_before_now(store: DuckDBStore) -> None:
    assert _evaluate(store, signal="count") == {"": (14.0, 14)}


def test_it_splits_by_group_by_and_filters_by_where(store: DuckDBStore) -> None:
    assert _evaluate(store, signal="count", group_by=["service"]) == {
        "checkout": (10.0, 10),
        "search": (4.0, 4),
    }
    assert _evaluate(store, signal="count", where="level = 'error'") == {"": (3.0, 3)}


def test_it_computes_the_rate_per_minute_and_the_error_ratio(store: DuckDBStore) -> None:
    rule_minutes = {"window": "2m"}
    rule = rule_from_mapping({"name": "r", "signal": "rate", "critical": "> 1", **rule_minutes})
    evaluation = evaluate(rule, EventQuerySource(store), T0 + 90, ingest_delay=-30)
    assert [o.value for o in evaluation.observations] == [15 / 2]  # T0 .. T0+120 holds 15 events
    ratios = _evaluate(store, signal="error_ratio", group_by=["service"])
    assert ratios == {"checkout": (0.3, 10), "search": (0.0, 4)}


@pytest.mark.parametrize(
    ("signal", "field", "expected"),
    [
        ("sum", "amount", 45.0),
        ("avg", "duration_ms", 550.0),
        ("max", "duration_ms", 1000.0),
        ("min", "duration_ms", 100.0),
        ("p50", None, 550.0),
        ("p95", None, 955.0),
        ("p99", "duration_ms", 991.0),
        ("distinct", "user_id", 4.0),
    ],
)
def test_it_computes_field_signals(
    store: DuckDBStore, signal: str, field: str | None, expected: float
) -> None:
    keys: dict[str, Any] = {"signal": signal, "where": "service = 'checkout'"}
    if field:
        keys["field"] = field
    value, events = _evaluate(store, **keys)[""]
    assert value == pytest.approx(expected) and events == 10


def test_it_runs_a_sql_rule_over_its_window_only(store: DuckDBStore) -> None:
    sql = "SELECT service, COUNT(*) FILTER (WHERE level = 'error') AS value, COUNT(*) AS events FROM logs GROUP BY service"
    assert _evaluate(store, sql=sql) == {"checkout": (3.0, 10), "search": (0.0, 4)}


def test_it_reports_a_query_the_store_cannot_run_as_an_evaluation_error(store: DuckDBStore) -> None:
    rule = rule_from_mapping(
        {
            "name": "r",
            "signal": "count",
            "where": "CAST(level AS INTEGER) > 0",
            "window": "1m",
            "critical": "> 1",
        }
    )
    evaluation = evaluate(rule, EventQuerySource(store), T0 + 90, ingest_delay=30)
    assert evaluation.error is not None and "info" in evaluation.error  # 'info' is not a number
    assert evaluation.observations == ()


def test_it_reports_a_sql_rule_without_a_value_column(store: DuckDBStore) -> None:
    rule = rule_from_mapping(
        {"name": "r", "sql": "SELECT service FROM logs", "window": "1m", "critical": "> 1"}
    )
    evaluation = evaluate(rule, EventQuerySource(store), T0 + 90, ingest_delay=30)
    assert evaluation.error is not None and "no 'value' column" in evaluation.error


def test_it_refuses_more_instances_than_the_limit(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opswatch.server import limits

    monkeypatch.setattr(limits, "RULES_MAX_INSTANCES", 2)
    rule = rule_from_mapping(
        {"name": "r", "signal": "count", "group_by": ["user_id"], "window": "1m", "critical": "> 1"}
    )
    evaluation = evaluate(rule, EventQuerySource(store), T0 + 90, ingest_delay=30)
    assert evaluation.error is not None and "more than 2 instances" in evaluation.error
    monkeypatch.setattr(limits, "RULES_MAX_INSTANCES", 5)  # four users, and search's events without one
    evaluation = evaluate(rule, EventQuerySource(store), T0 + 90, ingest_delay=30)
    assert evaluation.error is None
    assert sorted(o.group["user_id"] for o in evaluation.observations) == ["", "u0", "u1", "u2", "u3"]


def test_it_reads_an_absence_rule_only_while_the_schedule_expects_the_signal(store: DuckDBStore) -> None:
    # Sundays 06:00-06:59 in Chicago is 12:00-12:59 UTC on T0's day.
    rule = rule_from_mapping(
        {
            "name": "no-donations",
            "signal": "count",
            "where": "operation = 'metrics.donation.completed'",
            "window": "1m",
            "critical": "< 1",
            "active": {"schedule": "* 6 * * 0", "timezone": "America/Chicago"},
        }
    )
    source = EventQuerySource(store)
    inside = evaluate(rule, source, T0 + 90, ingest_delay=30)
    assert inside.expected and [(o.value, o.events) for o in inside.observations] == [(0.0, 0)]
    assert rule.level(inside.observations[0].value) == "critical"
    straddling = evaluate(rule, source, T0 + 60, ingest_delay=30)  # the window starts at 11:59:30
    assert not straddling.expected and straddling.observations == ()
    next_day = evaluate(rule, source, T0 + 86_400 + 90, ingest_delay=30)
    assert not next_day.expected


@pytest.mark.parametrize(
    ("schedule", "local", "covered"),
    [
        ("0 8-20 * * 0", "2026-11-29 08:00", True),  # a Sunday
        ("0 8-20 * * 0", "2026-11-29 20:59", True),
        ("0 8-20 * * 0", "2026-11-29 21:00", False),
        ("0 8-20 * * 0", "2026-11-29 07:59", False),
        ("0 8-20 * * 0", "2026-11-30 12:00", False),  # Monday
        ("30 8 * * *", "2026-11-30 08:29", False),
        ("30 8 * * *", "2026-11-30 08:45", True),
        ("30 8 * * *", "2026-11-30 09:10", False),
    ],
)
def test_it_expects_the_signal_from_each_schedule_time_to_the_end_of_its_hour(
    schedule: str, local: str, covered: bool
) -> None:
    import datetime
    from zoneinfo import ZoneInfo

    rule = rule_from_mapping(
        {"name": "r", "signal": "count", "window": "1m", "critical": "< 1",
         "active": {"schedule": schedule, "timezone": "America/Chicago"}}
    )  # fmt: skip
    moment = datetime.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("America/Chicago"))
    assert rule.active is not None and rule.active.covers(moment.timestamp()) is covered


def test_it_moves_the_window_from_one_evaluation_to_the_next(store: DuckDBStore) -> None:
    rule = rule_from_mapping({"name": "r", "signal": "count", "window": "10s", "critical": "> 1e9"})
    source = EventQuerySource(store)  # one source: the rule's statement is checked once, run three times
    counts = [evaluate(rule, source, T0 + end, ingest_delay=0).observations[0].value for end in (20, 30, 80)]
    assert counts == [10.0, 4.0, 1.0]  # [T0+10, +20): checkout; [+20, +30): search; [+70, +80): one error


def test_it_waits_for_a_field_no_event_has_had_instead_of_failing(store: DuckDBStore) -> None:
    grouped = rule_from_mapping(
        {
            "name": "r",
            "signal": "avg",
            "field": "basket_total",
            "group_by": ["region"],
            "window": "1m",
            "critical": "> 1",
        }
    )
    evaluation = evaluate(grouped, EventQuerySource(store), T0 + 90, ingest_delay=30)
    assert evaluation.error is None and evaluation.observations == ()
    assert evaluation.waiting == ("region", "basket_total")
    counting = rule_from_mapping(
        {"name": "c", "signal": "count", "where": "coupon = 'X'", "window": "1m", "critical": "< 1"}
    )
    evaluation = evaluate(counting, EventQuerySource(store), T0 + 90, ingest_delay=30)
    assert evaluation.waiting == ("coupon",) and [(o.value, o.events) for o in evaluation.observations] == [
        (0.0, 0)
    ]
    known = rule_from_mapping(
        {"name": "k", "signal": "count", "where": "userId = 'u1'", "window": "1m", "critical": "> 1e9"}
    )  # camelCase spelling of a stored field
    evaluation = evaluate(known, EventQuerySource(store), T0 + 90, ingest_delay=30)
    assert evaluation.waiting == () and evaluation.observations[0].value == 3.0


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_a_p95_rule_on_a_numeric_attribute_evaluates_on_each_engine(tmp_path: Path, engine: str) -> None:
    if engine == "clickhouse":
        if importlib.util.find_spec("chdb") is None:
            require_service("chdb", "it is in the dev extra: pip install -e '.[dev]'")
        from opswatch.server.store.clickhouse import open_chdb

        opened: Any = open_chdb(tmp_path / "clickhouse")
    else:
        opened = DuckDBStore(tmp_path / "events.duckdb")
    # Amounts 1 .. 10 at T0 + 0.25 s .. 9.25 s; one more 0.25 s before the window and one right at its end.
    records = [request(T0 + 0.25 + i, amount=float(i + 1)) for i in range(10)]
    records += [request(T0, amount=1000.0), request(T0 + 60.25, amount=1000.0)]
    opened.append(records)
    try:
        rule = rule_from_mapping(
            {"name": "r", "signal": "p95", "field": "amount", "window": "1m", "critical": "> 9"}
        )
        source = EventQuerySource(opened)
        evaluation = evaluate(rule, source, T0 + 90.25, ingest_delay=30)
        assert evaluation.error is None, evaluation.error
        assert (evaluation.window_start, evaluation.window_end) == (T0 + 0.25, T0 + 60.25)
        [observed] = evaluation.observations
        assert (observed.value, observed.events) == (pytest.approx(9.55), 10)
    finally:
        opened.close()
