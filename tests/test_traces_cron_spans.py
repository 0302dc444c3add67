"""Each run of an ``opswatch.cron_job`` is a span (kind internal, named after the monitor's slug, with the
slug and the run's check-in id as attributes, ``error`` when the run fails), and every record written
during the run carries its ids; read back from a real opswatch server with SQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import opswatch
from opswatch.server.query import run_query
from opswatch.server.testing import RunningServer, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        opswatch.init(dsn=running.dsn, service="church-jobs", console=False, capture_stdlib=False,
                      spool_dir=str(tmp_path / "spool"))  # fmt: skip
        yield running


def sql(server: RunningServer, text: str) -> list[tuple[Any, ...]]:
    assert opswatch.flush(10)
    return run_query(server.ctx.store, text).rows


@opswatch.cron_job("nightly-receipts")
def nightly_receipts() -> int:
    opswatch.logger.info("sending receipts", count=3)
    opswatch.track_query("receipts.pending", lambda: None)
    return 3


def test_a_run_is_a_span_and_its_records_carry_its_ids(server: RunningServer) -> None:
    assert nightly_receipts() == 3
    ((trace_id, span_id, kind, status, slug, run_id),) = sql(
        server,
        """SELECT trace_id, span_id, kind, status, attributes->>'$."opswatch.cron.monitor_slug"',
        attributes->>'$."opswatch.cron.run_id"' FROM spans WHERE name = 'nightly-receipts'""",
    )
    assert (kind, status, slug) == ("internal", "unset", "nightly-receipts")
    logs = sql(server, "SELECT message, trace_id, span_id, checkInId FROM logs WHERE logger = 'cron' "
                       "OR message = 'sending receipts' ORDER BY timestamp, message")  # fmt: skip
    assert sorted((message, trace, span) for message, trace, span, _ in logs) == [
        ("Cron job completed successfully", trace_id, span_id),
        ("Cron job started", trace_id, span_id),
        ("sending receipts", trace_id, span_id),
    ]
    assert {check_in for *_, check_in in logs if check_in} == {run_id}
    assert sql(server, "SELECT parent_span_id FROM spans WHERE name = 'receipts.pending'") == [(span_id,)]


def test_a_failed_run_is_an_error_span(server: RunningServer) -> None:
    async def reconcile() -> None:
        async with opswatch.cron_job("reconcile-payouts"):
            raise ConnectionError("bank API down")

    with pytest.raises(ConnectionError):
        asyncio.run(reconcile())
    assert sql(server, "SELECT name, status, status_message FROM spans") == [
        ("reconcile-payouts", "error", "ConnectionError: bank API down")
    ]


def test_a_run_inside_a_span_is_its_child_and_the_span_is_current_again_after(server: RunningServer) -> None:
    with opswatch.span("deploy hook") as outer:
        with opswatch.cron_job("warm-cache") as run:
            assert run.span is not None and opswatch.current_span() is run.span
        assert opswatch.current_span() is outer
    assert sql(server, "SELECT trace_id, parent_span_id FROM spans WHERE name = 'warm-cache'") == [
        (outer.trace_id, outer.span_id)
    ]


def test_a_run_handed_back_as_an_awaitable_leaves_no_span_current_in_the_caller(server: RunningServer) -> None:
    async def cleanup() -> int:
        opswatch.logger.info("cleaning up")
        return 11

    pending = opswatch.execute_cron_job("cleanup-pending-donations", lambda: cleanup())
    assert opswatch.current_span() is None
    assert asyncio.run(pending) == 11
    assert opswatch.current_span() is None
    ((trace_id, status),) = sql(server, "SELECT trace_id, status FROM spans WHERE name = 'cleanup-pending-donations'")
    assert status == "unset"
    assert sql(server, "SELECT count(*) FROM logs WHERE message = 'Cron job started' AND trace_id = "
                       f"'{trace_id}'") == [(1,)]  # fmt: skip
