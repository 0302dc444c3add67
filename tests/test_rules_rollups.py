"""``RollupSource`` answers as ``EventQuerySource`` does over the same events, on DuckDB and ClickHouse (chdb).

Random events (services, operations, levels, kinds, environments, durations, some retried), random
rules the rollup can answer (every signal it takes, ``group_by`` and ``where`` over its dimensions),
random windows that start and end inside minutes: the observations must be the same, counts and sums
exactly (up to float summation order), percentiles within the sketch's relative error. Rules it cannot
answer go to ``EventQuerySource`` unchanged.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import require_service
from opswatch.record import format_timestamp
from opswatch.server import limits
from opswatch.server.rules.evaluate import evaluate
from opswatch.server.rules.load import rule_from_mapping
from opswatch.server.rules.model import Observation, Rule
from opswatch.server.rules.rollup_signals import ROLLUP_MAX_COMBINATIONS, RollupSource, rollup_condition
from opswatch.server.rules.signals import EventQuerySource, SignalError
from opswatch.server.store import sketch
from opswatch.server.store.duckdb import DuckDBStore
from opswatch.server.store.rollups import DIMENSIONS as DIMENSIONS_ALL

#: 2026-11-29T12:00:00Z; each example writes its events on a day of its own after this.
T0 = 1_795_953_600.0
DAY = 86_400.0

_days = itertools.count(1)
_ids = itertools.count(1)

SIGNALS = ["count", "rate", "error_ratio", "sum", "avg", "max", "min", "p50", "p95", "p99"]
WHERES = [
    None,
    "service = 'checkout'",
    "level IN ('error', 'fatal')",
    "operation LIKE 'api.%'",
    "service = 'search' OR environment IS NULL",
    "NOT (kind = 'error') AND project_id = 1",
    "environment <> 'staging' AND level ILIKE 'ERR%'",
    "projectId IN (1, 2)",
    "service IN ('search', NULL)",
    "NOT (service = 'checkout') OR operation NOT LIKE 'api._a%'",
    "service IS NOT NULL AND (environment = 'production' OR kind = 'log')",
    "service NOT IN ('checkout', NULL) OR level NOT ILIKE 'e%'",
    "project_id = '1'",  # a text literal SQL casts: read with the rule's own statement
]
DIMENSIONS = ["service", "operation", "level", "kind", "environment", "project_id"]


@pytest.fixture(scope="module", params=["duckdb", "clickhouse"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    directory = tmp_path_factory.mktemp(request.param)
    if request.param == "duckdb":
        opened: Any = DuckDBStore(directory / "events.duckdb")
    else:
        if importlib.util.find_spec("chdb") is None:
            require_service("chdb", "it is in the dev extra: pip install -e '.[dev]'")
        from opswatch.server.store.clickhouse import open_chdb

        opened = open_chdb(directory / "clickhouse")
    yield opened
    opened.close()


def engine(store: Any) -> str:
    return "duckdb" if isinstance(store, DuckDBStore) else "clickhouse"


@st.composite
def events(draw: st.DrawFn, day: float) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=0, max_value=80))
    found = []
    for _ in range(count):
        at = day + draw(st.integers(min_value=0, max_value=900_000)) / 1000  # 15 minutes, to the ms
        level = draw(st.sampled_from(["info", "warning", "error", "fatal"]))
        record: dict[str, Any] = {
            "timestamp": format_timestamp(at),
            "level": level,
            "message": "request",
            "event_id": f"{next(_ids):032x}",
            "project_id": draw(st.sampled_from([1, 1, 2])),
            "kind": draw(st.sampled_from(["log", "error", "transaction"])),
            "service": draw(st.sampled_from(["checkout", "search", None])),
            "operation": draw(st.sampled_from(["api.pay", "api.find", "job.mail"])),
        }
        environment = draw(st.sampled_from(["production", "staging", None]))
        if environment is not None:
            record["environment"] = environment
        duration = draw(st.none() | st.sampled_from([0.0, 1.5]) | st.floats(min_value=0.0, max_value=1e5))
        if duration is not None:
            record["duration_ms"] = duration
        found.append(record)
    return found


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    signal = draw(st.sampled_from(SIGNALS))
    keys: dict[str, Any] = {"name": "r", "signal": signal, "critical": "> 1e12", "window": "1m"}
    if signal in ("sum", "avg", "max", "min") or (signal.startswith("p") and draw(st.booleans())):
        keys["field"] = "duration_ms"
    group_by = draw(st.lists(st.sampled_from(DIMENSIONS), max_size=2, unique=True))
    if group_by:
        keys["group_by"] = group_by
    where = draw(st.sampled_from(WHERES))
    if where:
        keys["where"] = where
    keys["window"] = f"{draw(st.sampled_from([30, 60, 150, 300, 600, 840]))}s"
    return rule_from_mapping(keys)


def readings(found: list[Observation]) -> dict[tuple[tuple[str, str], ...], tuple[float | None, int | None]]:
    return {tuple(sorted(o.group.items())): (o.value, o.events) for o in found}


def assert_same(rule: Rule, rolled: list[Observation], raw: list[Observation]) -> None:
    got, expected = readings(rolled), readings(raw)
    assert got.keys() == expected.keys()
    for group, (value, events) in expected.items():
        value_got, events_got = got[group]
        assert events_got == events, group
        if value is None or value_got is None:
            assert value_got is None and value is None, (group, value_got, value)
        elif rule.signal.startswith("p"):
            assert abs(value_got - value) <= sketch.RELATIVE_ERROR * abs(value) + sketch.ZERO, (
                group,
                value_got,
                value,
            )
        else:
            assert value_got == pytest.approx(value, rel=1e-9, abs=1e-9), group


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_it_answers_as_the_raw_events_do(store: Any, data: st.DataObject) -> None:
    day = T0 + next(_days) * DAY
    records = data.draw(events(day))
    store.append(records)
    if records and data.draw(st.booleans()):
        store.append(records[: len(records) // 2 + 1])  # a retry: nothing counted twice
    rule = data.draw(rules())
    start = (
        day
        + data.draw(st.integers(min_value=0, max_value=600))
        + data.draw(st.sampled_from([0.0, 0.25, 0.999]))
    )
    end = start + rule.window
    # Rules are answered from the window's rows in Python, or (past the combinations limit) by a statement each.
    source = RollupSource(store, max_combinations=data.draw(st.sampled_from([ROLLUP_MAX_COMBINATIONS, 0])))
    rolled = source.observe(rule, start, end)
    assert source.from_rollups == 1 and source.from_events == 0
    raw = EventQuerySource(store).observe(rule, start, end)
    assert_same(rule, rolled, raw)


def test_it_reads_the_rollup_through_the_evaluator_with_whole_minutes_and_edges(store: Any) -> None:
    day = T0 + next(_days) * DAY
    base = {
        "level": "info",
        "message": "m",
        "project_id": 1,
        "kind": "log",
        "service": "checkout",
        "operation": "api.pay",
    }
    records = [
        {
            **base,
            "timestamp": format_timestamp(day + second),
            "event_id": f"{next(_ids):032x}",
            "duration_ms": float(second),
        }
        for second in range(0, 600, 5)
    ]
    store.append(records)
    rule = rule_from_mapping({"name": "r", "signal": "count", "window": "5m", "critical": "> 1e9"})
    source = RollupSource(store)
    evaluation = evaluate(rule, source, day + 400.5, ingest_delay=30)  # window [day + 70.5, day + 370.5)
    assert evaluation.error is None
    assert [(o.value, o.events) for o in evaluation.observations] == [(60.0, 60)]  # seconds 75 .. 370
    assert source.from_rollups == 1


def test_it_gives_a_percentile_of_equal_durations_exactly_not_a_sketch_bucket(store: Any) -> None:
    day = T0 + next(_days) * DAY
    store.append([
        {"level": "info", "message": "m", "project_id": 1, "kind": "log", "service": "search",
         "operation": "api.search", "timestamp": format_timestamp(day + 60 + second),
         "event_id": f"{next(_ids):032x}", "duration_ms": 200.0}
        for second in range(0, 120, 10)
    ])  # fmt: skip
    assert sketch.quantile(sketch.sketch_of([200.0]), 0.95) != 200.0  # the bucket's own value is off
    rule = rule_from_mapping(
        {"name": "r", "signal": "p95", "field": "duration_ms", "window": "5m", "critical": "> 1e9"}
    )
    source = RollupSource(store)
    evaluation = evaluate(rule, source, day + 330.0, ingest_delay=0)  # window [day + 30, day + 330)
    assert source.from_rollups == 1
    assert [(o.value, o.events) for o in evaluation.observations] == [(200.0, 12)]

@pytest.mark.parametrize(
    "keys",
    [
        {"sql": "SELECT COUNT(*) AS value FROM logs"},
        {"signal": "distinct", "field": "service"},
        {"signal": "sum", "field": "amount"},
        {"signal": "count", "where": "message = 'm'"},
        {"signal": "count", "where": "lower(service) = 'checkout'"},
        {"signal": "count", "group_by": ["host"]},
    ],
)
def test_it_hands_rules_it_cannot_answer_to_the_event_query_source(store: Any, keys: dict[str, Any]) -> None:
    day = T0 + next(_days) * DAY
    store.append(
        [
            {
                "timestamp": format_timestamp(day + 1),
                "level": "info",
                "message": "m",
                "project_id": 1,
                "kind": "log",
                "service": "checkout",
                "event_id": f"{next(_ids):032x}",
                "amount": 3,
            }
        ]
    )
    rule = rule_from_mapping({"name": "r", "window": "1m", "critical": "> 1e9", **keys})
    source = RollupSource(store)
    assert source.observe(rule, day, day + 60) == EventQuerySource(store).observe(rule, day, day + 60)
    assert (source.from_rollups, source.from_events) == (0, 1)


def test_it_lets_only_dimension_comparisons_through_to_the_rollup() -> None:
    assert rollup_condition("Service IN ('a', 'b') AND NOT level LIKE 'err%'") == (
        """("service" IN ('a', 'b') AND NOT "level" LIKE 'err%')"""
    )
    assert (
        rollup_condition("projectId = 3 OR environment IS NULL")
        == '("project_id" = 3 OR "environment" IS NULL)'
    )
    for refused in [
        "message = 'x'",
        "service IN (SELECT service FROM logs)",
        "lower(service) = 'a'",
        "logs.service = 'a'",
        "service = 'a' OR (",
        "service LIKE 'a!%' ESCAPE '!'",
    ]:
        assert rollup_condition(refused) is None, refused


def test_it_reads_a_window_once_for_all_the_rules_over_it_and_again_after_a_write(store: Any) -> None:
    day = T0 + next(_days) * DAY
    base = {"level": "error", "message": "m", "project_id": 1, "kind": "error", "operation": "api.pay"}
    store.append(
        [
            {
                **base,
                "timestamp": format_timestamp(day + 100 + n),
                "service": ("checkout", "search")[n % 2],
                "event_id": f"{next(_ids):032x}",
            }
            for n in range(10)
        ]
    )
    reads: list[Any] = []
    source = RollupSource(store)
    original = store.read_rollups
    store.read_rollups = lambda request, **options: reads.append(request) or original(request, **options)
    try:
        rules = [
            rule_from_mapping(
                {
                    "name": f"r{n}",
                    "signal": signal,
                    "group_by": group_by,
                    "window": "5m",
                    "critical": "> 1e9",
                    **where,
                }
            )
            for n, (signal, group_by, where) in enumerate(
                itertools.product(
                    ["count", "error_ratio"], [[], ["service"]], [{}, {"where": "service = 'search'"}]
                )
            )
        ]
        first = {rule.name: readings(source.observe(rule, day + 30.5, day + 330.5)) for rule in rules}
        assert len(reads) == 1  # eight rules, one window: one read
        assert first["r0"] == {(): (10.0, 10)} and first["r1"] == {(): (5.0, 5)}
        store.append(
            [
                {
                    **base,
                    "timestamp": format_timestamp(day + 200),
                    "service": "search",
                    "event_id": f"{next(_ids):032x}",
                }
            ]
        )
        assert readings(source.observe(rules[1], day + 30.5, day + 330.5)) == {(): (6.0, 6)}  # read again
        assert len(reads) == 2
    finally:
        del store.read_rollups


@pytest.mark.parametrize("combinations", [3, 4])
def test_it_reads_a_window_whole_up_to_the_combinations_limit_and_rule_by_rule_past_it(
    store: Any, combinations: int
) -> None:
    day = T0 + next(_days) * DAY
    base = {"level": "info", "message": "m", "project_id": 1, "kind": "log", "operation": "api.pay"}
    services = ["a", "b", "c", "d"]  # four combinations of the dimensions
    store.append(
        [
            {
                **base,
                "timestamp": format_timestamp(day + 100 + n),
                "service": s,
                "event_id": f"{next(_ids):032x}",
            }
            for n, s in enumerate(services)
        ]
    )
    reads: list[Any] = []
    original = store.read_rollups
    store.read_rollups = lambda request, **options: (
        reads.append(request.group_by) or original(request, **options)
    )
    try:
        source = RollupSource(store, max_combinations=combinations)
        rule = rule_from_mapping(
            {"name": "r", "signal": "count", "group_by": ["service"], "window": "5m", "critical": "> 1e9"}
        )
        found = readings(source.observe(rule, day + 30.5, day + 330.5))
    finally:
        del store.read_rollups
    assert found == {(("service", s),): (1.0, 1) for s in services}
    # at the limit (4): the window's rows answer; past it (3 allowed): the rule's own statement
    assert reads == ([tuple(DIMENSIONS_ALL)] if combinations == 4 else [tuple(DIMENSIONS_ALL), ("service",)])


@pytest.mark.parametrize("combinations", [0, ROLLUP_MAX_COMBINATIONS])
def test_it_refuses_more_instances_than_the_limit_from_the_rollup_too(
    store: Any, combinations: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = T0 + next(_days) * DAY
    base = {"level": "info", "message": "m", "project_id": 1, "kind": "log", "service": "s"}
    store.append(
        [
            {
                **base,
                "timestamp": format_timestamp(day + 100 + n),
                "operation": f"op-{n}",
                "event_id": f"{next(_ids):032x}",
            }
            for n in range(3)
        ]
    )
    rule = rule_from_mapping(
        {"name": "r", "signal": "count", "group_by": ["operation"], "window": "5m", "critical": "> 1e9"}
    )
    monkeypatch.setattr(limits, "RULES_MAX_INSTANCES", 3)
    assert len(RollupSource(store, max_combinations=combinations).observe(rule, day + 30.5, day + 330.5)) == 3
    monkeypatch.setattr(limits, "RULES_MAX_INSTANCES", 2)
    with pytest.raises(SignalError, match="more than 2 instances"):
        RollupSource(store, max_combinations=combinations).observe(rule, day + 30.5, day + 330.5)
