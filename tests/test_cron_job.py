"""cron_job and execute_cron_job: every shape reports start and end, and the job runs exactly as before."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sentry_sdk

import opswatch
from opswatch import ConfigError, cron_job, execute_cron_job
from opswatch.crons.schedule import ScheduleError
from opswatch.testing import capture_logs
from sentry_server import FakeSentry

NIGHTLY = "check-expired-subscriptions"


@pytest.fixture(autouse=True)
def quiet_runtime() -> Iterator[None]:
    opswatch.init(console=False, capture_stdlib=False, environment="test", release="donations@1.0.0")
    yield
    opswatch.shutdown()


def check_ins(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("kind") == "check_in"]


def seed_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("kind") != "check_in"]


class PaymentError(Exception):
    pass


# -- the nightly job, decorated ------------------------------------------------------------------------


def test_it_reports_a_successful_run_and_returns_the_result() -> None:
    @cron_job(NIGHTLY, schedule="0 2 * * *", max_runtime_minutes=5)
    def check_expired_subscriptions(limit: int) -> dict[str, int]:
        return {"expired": limit}

    with capture_logs() as records:
        assert check_expired_subscriptions(3) == {"expired": 3}

    start, complete = seed_records(records)
    assert start["message"] == "Cron job started"
    assert start["operation"] == "cron.check_expired_subscriptions.start"
    assert start["monitorSlug"] == NIGHTLY and start["schedule"] == "0 2 * * *"
    assert complete["message"] == "Cron job completed successfully"
    assert complete["operation"] == "cron.check_expired_subscriptions.complete"
    assert isinstance(complete["durationMs"], int) and complete["durationMs"] >= 0
    assert start["checkInId"] == complete["checkInId"]

    begun, ended = check_ins(records)
    assert begun["operation"] == ended["operation"] == "cron.checkin"
    assert begun["monitor_slug"] == NIGHTLY
    assert (begun["status"], ended["status"]) == ("in_progress", "ok")
    assert begun["check_in_id"] == ended["check_in_id"] == start["checkInId"]
    assert len(begun["check_in_id"]) == 32
    assert "duration" not in begun and ended["duration"] >= 0
    assert ended["monitor_config"] == {"schedule": "0 2 * * *", "timezone": "UTC", "max_runtime": 5}
    assert ended["environment"] == "test" and ended["release"] == "donations@1.0.0"


def test_it_reports_a_failed_run_and_reraises_the_same_exception() -> None:
    error = PaymentError("card declined")

    @cron_job("cleanup-pending-donations", schedule="0 3 * * 0", max_runtime_minutes=10)
    def cleanup() -> None:
        raise error

    with capture_logs() as records, pytest.raises(PaymentError) as caught:
        cleanup()
    assert caught.value is error

    failed = seed_records(records)[-1]
    assert failed["level"] == "error" and failed["message"] == "Cron job failed"
    assert failed["operation"] == "cron.cleanup_pending_donations.error"
    assert failed["error"]["type"].endswith("PaymentError") and failed["error"]["message"] == "card declined"
    assert "durationMs" in failed
    assert [c["status"] for c in check_ins(records)] == ["in_progress", "error"]


def test_it_keeps_the_decorated_functions_name_and_docs() -> None:
    @cron_job(NIGHTLY, schedule="0 2 * * *")
    def check_expired_subscriptions() -> None:
        """Expire what is due."""

    assert check_expired_subscriptions.__name__ == "check_expired_subscriptions"
    assert check_expired_subscriptions.__doc__ == "Expire what is due."


def test_it_sends_no_configuration_when_no_schedule_is_given() -> None:
    with capture_logs() as records, cron_job("already-configured"):
        pass
    assert all("monitor_config" not in c for c in check_ins(records))
    assert "schedule" not in seed_records(records)[0]


def test_it_treats_sys_exit_zero_as_success_and_other_exits_as_failure() -> None:
    with capture_logs() as records:
        with pytest.raises(SystemExit), cron_job("script-job", schedule="@hourly"):
            sys.exit(0)
        with pytest.raises(SystemExit), cron_job("script-job", schedule="@hourly"):
            sys.exit(3)
    assert [c["status"] for c in check_ins(records)] == ["in_progress", "ok", "in_progress", "error"]


# -- async, context managers, calls --------------------------------------------------------------------


def test_it_monitors_async_functions_until_they_finish() -> None:
    @cron_job(NIGHTLY, schedule="0 2 * * *")
    async def check_expired_subscriptions() -> str:
        await asyncio.sleep(0.02)
        return "done"

    with capture_logs() as records:
        assert asyncio.run(check_expired_subscriptions()) == "done"
    ended = check_ins(records)[-1]
    assert ended["status"] == "ok" and ended["duration"] >= 0.015
    assert seed_records(records)[-1]["durationMs"] >= 15


def test_it_reports_async_failures_and_reraises_them() -> None:
    @cron_job(NIGHTLY, schedule="0 2 * * *")
    async def check_expired_subscriptions() -> None:
        await asyncio.sleep(0)
        raise PaymentError("stripe is down")

    with capture_logs() as records, pytest.raises(PaymentError, match="stripe is down"):
        asyncio.run(check_expired_subscriptions())
    assert [c["status"] for c in check_ins(records)] == ["in_progress", "error"]


def test_it_works_as_a_context_manager_and_gives_the_run() -> None:
    with capture_logs() as records:
        with cron_job(NIGHTLY, schedule="0 2 * * *") as run:
            assert run.status == "in_progress"
        assert run.status == "ok"
        with pytest.raises(KeyError), cron_job(NIGHTLY, schedule="0 2 * * *") as failing:
            raise KeyError("church")
        assert failing.status == "error"
    assert [c["check_in_id"] for c in check_ins(records)] == [run.check_in_id] * 2 + [failing.check_in_id] * 2


def test_it_works_as_an_async_context_manager_with_overlapping_runs() -> None:
    job = cron_job("sync-donations", schedule="*/5 * * * *")
    runs: dict[str, str] = {}

    async def one(name: str, delay: float) -> None:
        async with job as run:
            runs[name] = run.check_in_id
            await asyncio.sleep(delay)

    async def both() -> None:
        await asyncio.gather(one("slow", 0.05), one("fast", 0.0))

    with capture_logs() as records:
        asyncio.run(both())
    ended = {c["check_in_id"]: c for c in check_ins(records) if c["status"] == "ok"}
    assert set(ended) == set(runs.values())
    assert ended[runs["slow"]]["duration"] > ended[runs["fast"]]["duration"]


def test_it_runs_a_function_through_execute_cron_job() -> None:
    with capture_logs() as records:
        result = execute_cron_job("cleanup-pending-donations", lambda: 7, schedule="0 3 * * 0", max_runtime_minutes=10)
    assert result == 7
    config = check_ins(records)[0]["monitor_config"]
    assert config == {"schedule": "0 3 * * 0", "timezone": "UTC", "max_runtime": 10}


def test_it_returns_an_awaitable_from_execute_cron_job_for_async_functions() -> None:
    async def cleanup() -> int:
        await asyncio.sleep(0)
        return 11

    async def main() -> int:
        return await execute_cron_job("cleanup-pending-donations", cleanup, schedule="0 3 * * 0")

    with capture_logs() as records:
        assert asyncio.run(main()) == 11
        # a plain function returning a coroutine is awaited too: the run ends when the coroutine does
        assert asyncio.run(execute_cron_job("cleanup-pending-donations", lambda: cleanup())) == 11
    assert [c["status"] for c in check_ins(records)] == ["in_progress", "ok", "in_progress", "ok"]


def test_it_gives_each_thread_its_own_run() -> None:
    job = cron_job("thread-job", schedule="* * * * *")
    barrier = threading.Barrier(4)

    def work() -> None:
        with job:
            barrier.wait(timeout=5)

    with capture_logs() as records:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    started = {c["check_in_id"] for c in check_ins(records) if c["status"] == "in_progress"}
    ended = {c["check_in_id"] for c in check_ins(records) if c["status"] == "ok"}
    assert len(started) == 4 and started == ended


# -- configuration, checked when decorating -------------------------------------------------------------


def test_it_refuses_an_invalid_schedule_when_decorating() -> None:
    with pytest.raises(ScheduleError, match="never fires"):

        @cron_job(NIGHTLY, schedule="* * 31 2 *")
        def never() -> None: ...

    with pytest.raises(ScheduleError, match="6 fields"):
        cron_job(NIGHTLY, schedule="0 0 2 * * *")


def test_it_refuses_bad_settings_before_running_the_job() -> None:
    ran = []
    with pytest.raises(ConfigError) as caught:
        execute_cron_job(NIGHTLY, lambda: ran.append(1), schedule="0 2 * * *", failure_threshold=0)
    assert caught.value.setting == "failure_threshold" and ran == []
    with pytest.raises(ConfigError, match="not both"):
        cron_job(NIGHTLY, schedule="@daily", max_runtime=5, max_runtime_minutes=5)
    with pytest.raises(ConfigError) as missing:
        cron_job(NIGHTLY, max_runtime_minutes=5)
    assert missing.value.setting == "schedule"
    with pytest.raises(ConfigError) as slug:
        cron_job("Check Expired", schedule="@daily")
    assert slug.value.setting == "slug"
    with pytest.raises(ConfigError, match="unexpected keyword"):
        execute_cron_job(NIGHTLY, lambda: None, schedule="@daily", max_runtime_secs=5)


def test_it_refuses_generator_functions() -> None:
    with pytest.raises(ConfigError, match="generator"):

        @cron_job(NIGHTLY, schedule="@daily")
        def batches() -> Iterator[int]:
            yield 1


def test_it_sends_the_whole_configuration_with_each_check_in() -> None:
    with capture_logs() as records, cron_job(
        "heartbeat",
        schedule="every 30 seconds",
        timezone="Europe/Berlin",
        checkin_margin=timedelta(seconds=15),
        max_runtime=timedelta(minutes=2),
        failure_threshold=3,
        recovery_threshold=2,
    ):
        pass
    assert check_ins(records)[0]["monitor_config"] == {
        "schedule": "every 30 seconds",
        "timezone": "Europe/Berlin",
        "checkin_margin": 0.25,
        "max_runtime": 2,
        "failure_issue_threshold": 3,
        "recovery_threshold": 2,
    }


# -- destinations -------------------------------------------------------------------------------------


def test_it_keeps_check_ins_off_the_console() -> None:
    stream = io.StringIO()
    opswatch.init(stream=stream, format="json", capture_stdlib=False, environment="test")
    with cron_job(NIGHTLY, schedule="0 2 * * *"):
        pass
    opswatch.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["operation"] for line in lines] == [
        "cron.check_expired_subscriptions.start",
        "cron.check_expired_subscriptions.complete",
    ]


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("disk full")


def test_it_never_lets_monitoring_break_the_job(capsys: pytest.CaptureFixture[str]) -> None:
    opswatch.init(stream=BrokenStream(), format="json", capture_stdlib=False, environment="test")

    @cron_job(NIGHTLY, schedule="0 2 * * *")
    def check_expired_subscriptions() -> str:
        return "still fine"

    assert check_expired_subscriptions() == "still fine"
    opswatch.flush()
    assert "disk full" in capsys.readouterr().err


@pytest.fixture
def sentry(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSentry]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FakeSentry() as server:
        opswatch.init(
            console=False,
            capture_stdlib=False,
            sentry_dsn=server.dsn,
            sentry_enabled=True,
            environment="test",
            release="donations@1.0.0",
        )
        yield server
        opswatch.shutdown()
    assert not sentry_sdk.is_initialized()


def test_it_sends_check_ins_to_sentry_with_the_monitor_config(sentry: FakeSentry) -> None:
    @cron_job(NIGHTLY, schedule="0 2 * * *", max_runtime_minutes=5, checkin_margin=timedelta(seconds=30))
    def check_expired_subscriptions() -> None:
        pass

    check_expired_subscriptions()
    opswatch.flush(5)
    begun, ended = sentry.wait_for(lambda s: len(s.items_of("check_in")) >= 2 and s.items_of("check_in"))
    assert begun["monitor_slug"] == ended["monitor_slug"] == NIGHTLY
    assert (begun["status"], ended["status"]) == ("in_progress", "ok")
    assert begun["check_in_id"] == ended["check_in_id"]
    assert ended["duration"] >= 0
    assert ended["monitor_config"] == {
        "schedule": {"type": "crontab", "value": "0 2 * * *"},
        "timezone": "UTC",
        "checkin_margin": 1,
        "max_runtime": 5,
    }
    assert ended["environment"] == "test" and ended["release"] == "donations@1.0.0"


def test_it_sends_a_failed_run_to_sentry_as_an_error_check_in_and_an_event(sentry: FakeSentry) -> None:
    with pytest.raises(PaymentError), cron_job("cleanup-pending-donations", schedule="0 3 * * 0"):
        raise PaymentError("database timeout")
    opswatch.flush(5)
    sentry.wait_for(lambda s: len(s.items_of("check_in")) >= 2 and s.items_of("event"))
    assert [c["status"] for c in sentry.items_of("check_in")] == ["in_progress", "error"]
    (event,) = sentry.items_of("event")
    assert event["exception"]["values"][-1]["value"] == "database timeout"
    assert event["tags"]["operation"] == "cron.cleanup_pending_donations.error"
