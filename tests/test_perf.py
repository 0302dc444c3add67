"""Performance tracking: thresholds, record shapes, and every calling shape, sync and async.

Time is driven by a manual clock: the tracked work advances it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator

import pytest

import opswatch
from opswatch import perf
from opswatch.perf import start_timer, track_external_call, track_performance, track_query
from opswatch.perf.testing import ManualClock, manual_clock
from opswatch.testing import capture_logs


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    perf.reset()
    with manual_clock() as clock:
        yield clock
    perf.reset()


def perf_records(logs: list[dict]) -> list[dict]:
    return [r for r in logs if r["logger"] == "perf"]


def only(logs: list[dict]) -> dict:
    records = perf_records(logs)
    assert len(records) == 1, records
    return records[0]


# -- record shapes -----------------------------------------------------------------------------------


def test_it_writes_a_debug_record_with_the_duration_below_the_slow_threshold(clock: ManualClock) -> None:
    with capture_logs() as logs:
        track_query("donations.findMany", lambda: clock.advance(ms=120))
    record = only(logs)
    assert record["level"] == "debug"
    assert record["operation"] == "perf.db.donations.findMany"
    assert record["duration_ms"] == 120.0
    assert "durationMs" not in record


def test_it_warns_with_the_seed_fields_above_the_slow_threshold(clock: ManualClock) -> None:
    with capture_logs() as logs:
        track_query("donations.list", lambda: clock.advance(ms=1500))
    record = only(logs)
    assert record["level"] == "warn"
    assert record["message"] == "Significant performance degradation"
    assert record["operation"] == "performance.warn.donations.list"
    assert record["durationMs"] == 1500
    assert record["thresholdMs"] == 500
    assert record["slowdownFactor"] == "3.00"
    assert record["duration_ms"] == 1500.0


def test_it_writes_the_seed_critical_record_for_a_very_slow_query(clock: ManualClock) -> None:
    with capture_logs() as logs:
        track_query("donations.findMany", lambda: clock.advance(ms=2500))
    record = only(logs)
    assert record["level"] == "error"
    assert record["message"] == "Critical performance degradation"
    assert record["operation"] == "performance.critical.db.donations.findMany"
    assert (record["durationMs"], record["thresholdMs"], record["slowdownFactor"]) == (2500, 500, "5.00")
    assert "error" not in record  # a slow query is not an exception


@pytest.mark.parametrize(
    ("track", "kind", "slow", "critical"),
    [(track_performance, "api", 1000, 3000), (track_query, "db", 500, 2000)],
)
def test_it_applies_the_seed_thresholds_at_their_edges(
    clock: ManualClock, track: object, kind: str, slow: int, critical: int
) -> None:
    levels = []
    for ms in (slow, slow + 0.5, critical, critical + 0.5):
        with capture_logs() as logs:
            track("edge", functools.partial(clock.advance, ms=ms))  # type: ignore[operator]
        record = only(logs)
        levels.append(record["level"])
        if record["level"] == "error":
            assert record["operation"] == f"performance.critical.{kind}.edge"
    assert levels == ["debug", "warn", "warn", "error"]


def test_it_only_warns_for_external_calls_even_past_critical(clock: ManualClock) -> None:
    levels = []
    for ms in (2000, 2001, 5000, 60_000):
        with capture_logs() as logs:
            track_external_call("stripe.payment_intent.create", functools.partial(clock.advance, ms=ms))
        levels.append(only(logs)["level"])
    assert levels == ["debug", "warn", "warn", "warn"]
    with capture_logs() as logs:
        track_external_call("stripe.payment_intent.create", lambda: clock.advance(ms=9000))
    assert only(logs)["operation"] == "performance.warn.stripe.payment_intent.create"


def test_it_puts_the_callers_fields_on_the_record(clock: ManualClock) -> None:
    with capture_logs() as logs:
        track_query("donations.findMany", lambda: clock.advance(ms=3000), church_id="c1", endpoint="/api/x")
    record = only(logs)
    assert record["church_id"] == "c1"
    assert record["endpoint"] == "/api/x"
    assert record["operation"] == "performance.critical.db.donations.findMany"


def test_it_carries_the_bound_context(clock: ManualClock) -> None:
    with capture_logs() as logs, opswatch.context(request_id="r-1"):
        track_query("q", lambda: None)
    assert only(logs)["request_id"] == "r-1"


# -- calling shapes ----------------------------------------------------------------------------------


def test_it_returns_the_functions_value_unchanged(clock: ManualClock) -> None:
    rows = [{"id": 1}]
    with capture_logs():
        assert track_query("donations.findMany", lambda: rows) is rows


def test_it_awaits_an_async_function_passed_in(clock: ManualClock) -> None:
    async def fetch() -> list[int]:
        clock.advance(ms=600)
        await asyncio.sleep(0)
        return [1, 2]

    with capture_logs() as logs:
        assert asyncio.run(track_query("donations.findMany", fetch)) == [1, 2]
    assert only(logs)["operation"] == "performance.warn.donations.findMany"


def test_it_awaits_a_lambda_that_returns_a_coroutine(clock: ManualClock) -> None:
    async def fetch(n: int) -> int:
        clock.advance(ms=2100)
        return n

    with capture_logs() as logs:
        assert asyncio.run(track_query("donations.findMany", lambda: fetch(7))) == 7
    assert only(logs)["level"] == "error"


def test_it_measures_an_awaitable_that_already_runs(clock: ManualClock) -> None:
    async def main() -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        tracked = track_external_call("sms.send", future)
        clock.advance(ms=2500)
        future.set_result("sent")
        return await tracked

    with capture_logs() as logs:
        assert asyncio.run(main()) == "sent"
    assert only(logs)["operation"] == "performance.warn.sms.send"


def test_it_decorates_a_plain_function(clock: ManualClock) -> None:
    @track_performance("donations.list")
    def list_donations(church_id: str, *, limit: int = 10) -> list[str]:
        """List them."""
        clock.advance(ms=1200)
        return [church_id] * limit

    with capture_logs() as logs:
        assert list_donations("c1", limit=2) == ["c1", "c1"]
    assert list_donations.__name__ == "list_donations"
    assert list_donations.__doc__ == "List them."
    assert only(logs)["operation"] == "performance.warn.donations.list"


def test_it_decorates_an_async_function(clock: ManualClock) -> None:
    @track_performance("donations.list")
    async def list_donations() -> str:
        clock.advance(ms=3500)
        return "ok"

    assert asyncio.iscoroutinefunction(list_donations)
    with capture_logs() as logs:
        assert asyncio.run(list_donations()) == "ok"
    assert only(logs)["operation"] == "performance.critical.api.donations.list"


def test_it_measures_each_call_of_a_decorated_function(clock: ManualClock) -> None:
    @track_query("q")
    def query(ms: float) -> None:
        clock.advance(ms=ms)

    with capture_logs() as logs:
        query(1)
        query(700)
    assert [r["level"] for r in perf_records(logs)] == ["debug", "warn"]


def test_it_measures_a_with_block(clock: ManualClock) -> None:
    with capture_logs() as logs, track_external_call("stripe.payment_intent.create") as tracker:
        clock.advance(ms=2200)
    assert only(logs)["operation"] == "performance.warn.stripe.payment_intent.create"
    assert tracker.duration_ms == pytest.approx(2200)


def test_it_measures_an_async_with_block(clock: ManualClock) -> None:
    async def main() -> None:
        async with track_query("donations.findMany"):
            clock.advance(ms=2001)
            await asyncio.sleep(0)

    with capture_logs() as logs:
        asyncio.run(main())
    assert only(logs)["operation"] == "performance.critical.db.donations.findMany"


# -- exceptions --------------------------------------------------------------------------------------


class CardDeclined(Exception):
    pass


def test_it_records_a_failed_call_once_and_reraises_the_same_exception(clock: ManualClock) -> None:
    error = CardDeclined("card_declined")

    def charge() -> None:
        clock.advance(ms=2500)
        raise error

    with capture_logs() as logs, pytest.raises(CardDeclined) as raised:
        track_external_call("stripe.charge", charge)
    assert raised.value is error
    record = only(logs)
    assert record["outcome"] == "error"
    assert record["error_type"] == "CardDeclined"
    assert record["durationMs"] == 2500


def test_it_records_a_failure_in_every_shape(clock: ManualClock) -> None:
    @track_query("decorated")
    def decorated() -> None:
        raise CardDeclined()

    @track_query("decorated_async")
    async def decorated_async() -> None:
        raise CardDeclined()

    async def in_async_with() -> None:
        async with track_query("async_with"):
            raise CardDeclined()

    async def plain_async() -> None:
        raise CardDeclined()

    with capture_logs() as logs:
        with pytest.raises(CardDeclined):
            decorated()
        with pytest.raises(CardDeclined):
            asyncio.run(decorated_async())
        with pytest.raises(CardDeclined), track_query("with"):
            raise CardDeclined()
        with pytest.raises(CardDeclined):
            asyncio.run(in_async_with())
        with pytest.raises(CardDeclined):
            asyncio.run(track_query("awaited", plain_async))
    records = perf_records(logs)
    assert [r["operation"] for r in records] == [
        "perf.db.decorated",
        "perf.db.decorated_async",
        "perf.db.with",
        "perf.db.async_with",
        "perf.db.awaited",
    ]
    assert all(r["outcome"] == "error" and r["error_type"] == "CardDeclined" for r in records)


def test_it_hands_back_a_value_that_is_not_a_function_and_warns(clock: ManualClock) -> None:
    with capture_logs() as logs:
        assert track_query("donations.findMany", [1, 2]) == [1, 2]
    assert [r["operation"] for r in logs] == ["perf.misuse"]


# -- configuration -----------------------------------------------------------------------------------


def test_it_takes_thresholds_per_kind(clock: ManualClock) -> None:
    perf.configure(db=(50, 100))
    with capture_logs() as logs:
        track_query("q", lambda: clock.advance(ms=60))
        track_query("q", lambda: clock.advance(ms=150))
        track_performance("a", lambda: clock.advance(ms=150))
    assert [r["level"] for r in perf_records(logs)] == ["warn", "error", "debug"]
    assert perf_records(logs)[0]["thresholdMs"] == 50


def test_it_takes_thresholds_per_operation_and_can_remove_them(clock: ManualClock) -> None:
    perf.configure(operations={"reports.build": {"slow_ms": 5000, "critical_ms": 20_000}})
    with capture_logs() as logs:
        track_query("reports.build", lambda: clock.advance(ms=4000))
        track_query("donations.findMany", lambda: clock.advance(ms=4000))
    assert [r["level"] for r in perf_records(logs)] == ["debug", "error"]
    perf.configure(operations={"reports.build": None})
    with capture_logs() as logs:
        track_query("reports.build", lambda: clock.advance(ms=4000))
    assert only(logs)["level"] == "error"


def test_it_takes_thresholds_per_call(clock: ManualClock) -> None:
    with capture_logs() as logs:
        track_query("q", lambda: clock.advance(ms=30), slow_ms=10, critical_ms=20)
        with track_performance("p", slow_ms=10_000):
            clock.advance(ms=5000)
    assert [r["level"] for r in perf_records(logs)] == ["error", "debug"]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"db": (0, 100)}, "perf.db"),
        ({"api": (500, 100)}, "perf.api"),
        ({"external": "slow"}, "perf.external"),
        ({"api": (True, 10)}, "perf.api"),
        ({"operations": {"x": (1, float("inf"))}}, "perf.operations['x']"),
        ({"operations": {"x": {"slow": 1}}}, "perf.operations['x']"),
        ({"clock": 5}, "perf.clock"),
    ],
)
def test_it_rejects_bad_configuration_naming_the_setting(
    clock: ManualClock, settings: dict, named: str
) -> None:
    with pytest.raises(opswatch.ConfigError) as raised:
        perf.configure(**settings)
    assert raised.value.setting == named
    assert perf.current().thresholds_for("db", "x") == perf.Thresholds(500, 2000)


def test_it_comes_back_to_the_seed_defaults_on_reset(clock: ManualClock) -> None:
    perf.configure(api=(1, 2), operations={"x": (1, 2)})
    perf.reset()
    config = perf.current()
    assert config.thresholds_for("api", "x") == perf.Thresholds(1000, 3000)
    assert config.thresholds_for("db", "x") == perf.Thresholds(500, 2000)
    assert config.thresholds_for("external", "x") == perf.Thresholds(2000, 5000)


# -- timers ------------------------------------------------------------------------------------------


def test_it_logs_a_timers_total_and_every_lap(clock: ManualClock) -> None:
    with capture_logs() as logs:
        timer = start_timer("complex_operation", church_id="c1")
        clock.advance(ms=300)
        assert timer.lap("step1_complete") == pytest.approx(300)
        clock.advance(ms=900)
        timer.lap("step2_complete")
        clock.advance(ms=100)
        assert timer.end() == pytest.approx(1300)
    record = only(logs)
    assert record["operation"] == "performance.warn.complex_operation"
    assert record["church_id"] == "c1"
    assert record["laps"] == [
        {"name": "step1_complete", "duration_ms": 300.0, "elapsed_ms": 300.0},
        {"name": "step2_complete", "duration_ms": 900.0, "elapsed_ms": 1200.0},
    ]


def test_it_ends_a_timer_only_once(clock: ManualClock) -> None:
    with capture_logs() as logs:
        timer = start_timer("job", kind="db")
        clock.advance(ms=10)
        first = timer.end()
        clock.advance(ms=10_000)
        assert timer.end() == first
    assert only(logs)["operation"] == "perf.db.job"


def test_it_ends_a_timer_at_the_end_of_a_with_block(clock: ManualClock) -> None:
    with capture_logs() as logs, pytest.raises(CardDeclined), start_timer("import") as timer:
        timer.lap("read")
        clock.advance(ms=4000)
        raise CardDeclined()
    record = only(logs)
    assert record["operation"] == "performance.critical.api.import"
    assert record["outcome"] == "error"


def test_it_measures_nested_blocks_of_one_tracker_separately(clock: ManualClock) -> None:
    tracker = track_query("q")
    with capture_logs() as logs:
        with tracker:
            clock.advance(ms=100)
            with tracker:
                clock.advance(ms=600)
        clock.advance(ms=5)
    inner, outer = perf_records(logs)
    assert inner["durationMs"] == 600
    assert outer["durationMs"] == 700
