"""The ingest pipeline: group commit, hooks after durability, bounded queue (429), graceful drain."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest_helpers import donation, http, post_native, stored_by_id
from opswatch.server.testing import RunningServer, running_server


class Gate:
    """A hook that holds the committer until ``open()``: what a slow disk looks like to ingest."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, _ctx: Any, _records: list[dict[str, Any]]) -> None:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(30)

    def open(self) -> None:
        self.release.set()


def in_background(fn: Any, *args: Any, **kwargs: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn(*args, **kwargs)))
    thread.start()
    return thread, result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path, max_pending_events=10, retention_days=36500) as running:
        yield running


def test_it_answers_429_with_retry_after_when_the_queue_is_full(server: RunningServer) -> None:
    gate = Gate()
    server.ctx.hooks.append(gate)
    first = [donation() for _ in range(5)]
    thread, result = in_background(post_native, server, first)
    assert gate.entered.wait(10)
    refused = post_native(server, [donation() for _ in range(6)])
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert "busy" in refused.json()["detail"]
    too_many = http().post(
        f"{server.url}/api/1/envelope/?sentry_key={server.key}",
        content=b"{}\n" + b"".join(b'{"type":"event"}\n{"message":"m"}\n' for _ in range(6)),
    )
    assert too_many.status_code == 429
    assert too_many.headers["x-sentry-rate-limits"] == "1::organization:overloaded"
    gate.open()
    thread.join(10)
    assert result[0].status_code == 200
    assert post_native(server, [donation() for _ in range(6)]).status_code == 200
    assert server.ctx.metrics.rejected.value(reason="overloaded") == 2


def test_it_takes_one_batch_larger_than_the_queue_when_nothing_waits(server: RunningServer) -> None:
    answer = post_native(server, [donation() for _ in range(25)])
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 25


def test_it_merges_concurrent_batches_into_fewer_commits(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        commits_before = server.ctx.metrics.batch_latency.count
        start = threading.Barrier(40)

        def send() -> httpx.Response:
            start.wait(10)
            return post_native(server, [donation()])

        senders = [in_background(send) for _ in range(40)]
        for thread, _ in senders:
            thread.join(30)
        assert all(result[0].json()["accepted"] == 1 for _, result in senders)
        # Forty requests at once: the ones that arrive while a commit runs share the next one.
        assert server.ctx.metrics.batch_latency.count - commits_before < 40


def test_it_writes_the_next_group_while_the_hooks_of_one_run(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        gate = Gate()
        server.ctx.hooks.append(gate)
        first, first_result = in_background(post_native, server, [donation()])
        assert gate.entered.wait(10)
        second, second_result = in_background(post_native, server, [donation()])
        deadline = time.monotonic() + 60
        while server.ctx.metrics.batch_latency.count < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # the second group becomes durable although the first one's hooks hold
        assert server.ctx.metrics.batch_latency.count == 2
        assert not first_result and not second_result  # neither is answered before its hooks ran
        gate.open()
        first.join(10)
        second.join(10)
        assert first_result[0].status_code == second_result[0].status_code == 200
        assert gate.calls == 2


def test_it_runs_hooks_once_per_new_record_before_answering(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    with running_server(tmp_path) as server:
        server.ctx.hooks.append(lambda _ctx, records: seen.extend(records))
        batch = [donation(password="hunter2"), donation()]
        post_native(server, batch)
        assert [r["event_id"] for r in seen] == [r["event_id"] for r in batch]  # before the answer
        post_native(server, batch)
        post_native(server, [batch[0], donation()])
    assert len(seen) == 3
    assert seen[0]["password"] == "[REDACTED]"
    assert seen[0]["project_id"] == server.project_id
    assert seen[0]["kind"] == "log"
    assert "received_at" in seen[0]


def test_it_keeps_events_when_a_hook_fails(tmp_path: Path) -> None:
    def broken(_ctx: Any, _records: list[dict[str, Any]]) -> None:
        raise RuntimeError("the hook broke")

    with running_server(tmp_path) as server:
        server.ctx.hooks.append(broken)
        record = donation()
        answer = post_native(server, [record])
        assert answer.status_code == 200
        assert record["event_id"] in stored_by_id(server)


def test_it_commits_what_is_queued_when_the_server_stops(tmp_path: Path) -> None:
    gate = Gate()
    queued = [donation() for _ in range(3)]
    with running_server(tmp_path) as server:
        server.ctx.hooks.append(gate)
        futures = [
            server.ctx.pipeline.submit(server.project_id, [dict(r, received_at="x")], "test") for r in queued
        ]
        assert gate.entered.wait(10)
        threading.Timer(0.2, gate.open).start()
    assert all(f.result(0).stored == 1 for f in futures)
    with running_server(tmp_path) as again:
        records = stored_by_id(again)
        assert all(r["event_id"] in records for r in queued)
        assert again.ctx.default_project.keys == server.ctx.default_project.keys


def test_it_refuses_new_events_after_stopping(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        pass
    with pytest.raises(httpx.ConnectError):
        post_native(server, [donation()])
    from opswatch.server.pipeline import StoreUnavailable

    with pytest.raises(StoreUnavailable):
        server.ctx.pipeline.submit(1, [donation()], "test")


def test_it_lets_the_server_write_its_own_records_through_ingest(server: RunningServer) -> None:
    outcome = server.ctx.pipeline.ingest(
        server.project_id,
        [{"kind": "state_change", "message": "monitor nightly is failing", "level": "error"}],
        "monitors",
    )
    assert outcome.stored == 1
    (record,) = [r for r in stored_by_id(server).values() if r["kind"] == "state_change"]
    assert record["message"] == "monitor nightly is failing"
    with pytest.raises(ValueError, match="kind"):
        server.ctx.pipeline.ingest(server.project_id, [{"kind": "bogus"}], "monitors")
