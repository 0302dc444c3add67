"""Finding what failed in a cron run: errors remembered by run id and by trace, bounded in count and age."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opswatch.server.monitors.outbox import ERROR_WAIT, Outbox
from opswatch.server.monitors.run_errors import (
    MAX_AGE,
    SLACK,
    TRACE_WINDOW,
    FailureExplainer,
    RunErrors,
    awaits_error,
)
from opswatch.server.monitors.service import MonitorService
from opswatch.server.state.base import create_engine_for

T0 = 1_750_000_000.0


def cron_error(run_id: str | None = None, trace_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """The SDK's ``cron.<slug>.error`` record (or a Sentry error event, with a trace id only)."""
    record: dict[str, Any] = {
        "project_id": 1,
        "kind": "error",
        "event_id": f"ev-{run_id or trace_id}",
        "error": {"type": "CardDeclined", "message": "card declined for donor 7", "stack": []},
    }
    if run_id:
        record["checkInId"] = run_id
    if trace_id:
        record["trace_id"] = trace_id
    return record | fields


def test_it_finds_the_error_of_a_run_by_its_id() -> None:
    errors = RunErrors()
    assert errors.remember([cron_error(run_id="run-1")], T0) == 1
    found = errors.find(1, "run-1", None, T0, T0)
    assert found is not None and found.details() == {
        "error_type": "CardDeclined",
        "error_message": "card declined for donor 7",
        "error_event_id": "ev-run-1",
    }
    assert errors.find(2, "run-1", None, T0, T0) is None  # another project's run


def test_it_matches_a_trace_only_during_the_run_or_soon_after_it() -> None:
    errors = RunErrors()
    errors.remember([cron_error(trace_id="t1")], T0)
    started, ended = T0 + SLACK, T0 + 30
    assert errors.find(1, None, "t1", started, ended) is not None  # at the edge of the slack before it
    assert errors.find(1, None, "t1", started + 0.001, ended) is None  # an error from before the run
    assert errors.find(1, None, "t1", T0 - 60, T0 - TRACE_WINDOW) is not None  # at the window's end
    assert errors.find(1, None, "t1", T0 - 60, T0 - TRACE_WINDOW - 0.001) is None


def test_it_keeps_only_errors_that_name_a_run_or_a_trace() -> None:
    errors = RunErrors()
    kept = errors.remember(
        [
            cron_error(),  # names neither
            cron_error(run_id="r", kind="log"),  # not an error record
            cron_error(run_id="r", error="a string"),
            cron_error(run_id="r", project_id=None),
            {"project_id": 1, "kind": "check_in", "checkInId": "r"},
        ],
        T0,
    )
    assert kept == 0 and len(errors) == 0


def test_it_forgets_the_oldest_past_its_capacity_and_anything_past_its_age() -> None:
    errors = RunErrors(capacity=2)
    errors.remember([cron_error(run_id=f"r{n}") for n in range(3)], T0)
    assert len(errors) == 2
    assert errors.find(1, "r0", None, T0, T0) is None and errors.find(1, "r2", None, T0, T0) is not None
    errors.remember([cron_error(run_id="late")], T0 + MAX_AGE)
    assert errors.find(1, "r2", None, T0, T0) is not None  # exactly MAX_AGE old: kept
    errors.remember([cron_error(run_id="later")], T0 + MAX_AGE + 1)
    assert errors.find(1, "r2", None, T0, T0) is None


def test_it_waits_for_an_error_only_when_one_is_on_its_way() -> None:
    assert awaits_error({"reason": "error", "error_follows": True})
    assert not awaits_error({"reason": "error", "error_follows": True, "error_type": "ValueError"})
    assert not awaits_error({"reason": "error"})


# -- the outbox holds a Sentry failure for its error event, up to ERROR_WAIT --------------------------------


class Recorder:
    """The outbox's ``AlertSender`` seam, in memory: keeps every alert it is handed."""

    def __init__(self) -> None:
        self.alerts: list[Any] = []

    def send(self, alert: Any, *, channels: Any = None, route: str = "send") -> None:
        self.alerts.append(alert)


class Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sentry_failure(state_url: str) -> Iterator[tuple[MonitorService, Outbox, Recorder, Ticks]]:
    """A monitor whose Sentry ``error`` check-in (trace t-1) just opened a failing episode, in a state
    store on SQLite and on PostgreSQL (``state_url`` in ``conftest.py``)."""
    engine = create_engine_for(state_url)
    service = MonitorService(engine, notifications=True)
    recorder, ticks = Recorder(), Ticks()
    outbox = Outbox(engine, None, recorder, FailureExplainer(service.run_errors, engine, ""), ticks)
    check_in = {
        "kind": "check_in",
        "project_id": 1,
        "source": "sentry",
        "monitor_slug": "sync-ledger",
        "status": "error",
        "duration": 2.0,
        "trace_id": "t-1",
        "monitor_config": {"schedule": "0 4 * * *"},
    }
    service.hook(None, [check_in])
    yield service, outbox, recorder, ticks
    engine.dispose()


def test_it_holds_a_sentry_failure_for_its_error_event_until_error_wait(
    sentry_failure: tuple[MonitorService, Outbox, Recorder, Ticks],
) -> None:
    _service, outbox, recorder, ticks = sentry_failure
    outbox.drain(T0)
    ticks.now = ERROR_WAIT - 0.001
    outbox.drain(T0)
    assert recorder.alerts == []
    ticks.now = ERROR_WAIT
    outbox.drain(T0)
    [alert] = recorder.alerts
    assert "sent no error" in alert.text


def test_it_sends_a_held_failure_as_soon_as_its_error_event_arrives(
    sentry_failure: tuple[MonitorService, Outbox, Recorder, Ticks],
) -> None:
    service, outbox, recorder, _ticks = sentry_failure
    outbox.drain(T0)
    assert recorder.alerts == []
    service.hook(None, [cron_error(trace_id="t-1")])  # the error event, in the check-in's trace
    outbox.drain(T0)
    [alert] = recorder.alerts
    assert "CardDeclined: card declined for donor 7" in alert.text
