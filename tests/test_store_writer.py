"""The single writer thread: group commit, failure isolation, calls in order, a clean close."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from opswatch.server.store.base import StoreClosed
from opswatch.server.store.writer import WriterThread


class Ledger:
    """A stand-in for a database connection: a list of committed groups (real objects, no mocks)."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.closed = False
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def close(self) -> None:
        self.closed = True


def commit(ledger: Ledger, payloads: Sequence[list[str]]) -> list[int]:
    ledger.entered.set()
    ledger.gate.wait(10)
    if any("bad" in payload for payload in payloads):
        raise ValueError("bad payload")
    ledger.groups.append([item for payload in payloads for item in payload])
    return [len(payload) for payload in payloads]


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


def test_it_merges_appends_queued_during_a_commit_into_one(ledger: Ledger) -> None:
    writer: WriterThread[list[str]] = WriterThread(ledger, commit, max_rows=1000)
    ledger.gate.clear()
    first = writer.append(["a"], 1)
    assert ledger.entered.wait(10)
    waiting = [writer.append([f"b{i}"], 1) for i in range(5)]
    ledger.gate.set()
    assert first.result(10) == 1
    assert [future.result(10) for future in waiting] == [1] * 5
    writer.close()
    assert ledger.groups == [["a"], ["b0", "b1", "b2", "b3", "b4"]]
    assert writer.commits == 2


def test_it_stops_merging_at_the_row_limit(ledger: Ledger) -> None:
    writer: WriterThread[list[str]] = WriterThread(ledger, commit, max_rows=2)
    ledger.gate.clear()
    writer.append(["a"], 1)
    assert ledger.entered.wait(10)
    futures = [writer.append([f"b{i}"], 1) for i in range(4)]
    ledger.gate.set()
    for future in futures:
        future.result(10)
    writer.close()
    assert ledger.groups == [["a"], ["b0", "b1"], ["b2", "b3"]]


def test_it_fails_only_the_append_that_broke_a_group(ledger: Ledger) -> None:
    writer: WriterThread[list[str]] = WriterThread(ledger, commit, max_rows=1000)
    ledger.gate.clear()
    writer.append(["a"], 1)
    assert ledger.entered.wait(10)
    good, bad, other = writer.append(["g"], 1), writer.append(["bad"], 1), writer.append(["o"], 1)
    ledger.gate.set()
    assert good.result(10) == 1
    assert other.result(10) == 1
    with pytest.raises(ValueError, match="bad payload"):
        bad.result(10)
    writer.close()
    assert ledger.groups == [["a"], ["g"], ["o"]]
    assert writer.pending_rows == 0


def test_it_runs_calls_alone_and_in_order(ledger: Ledger) -> None:
    writer: WriterThread[list[str]] = WriterThread(ledger, commit, max_rows=1000)
    ledger.gate.clear()
    writer.append(["a"], 1)
    assert ledger.entered.wait(10)
    before = writer.append(["b"], 1)
    result: list[int] = []
    caller = threading.Thread(target=lambda: result.append(writer.call(lambda conn: len(conn.groups))))
    caller.start()
    while writer.pending_items < 3:  # the call is queued behind "b"
        threading.Event().wait(0.01)
    after = writer.append(["c"], 1)
    ledger.gate.set()
    caller.join(10)
    assert (before.result(10), after.result(10)) == (1, 1)
    writer.close()
    assert result == [2]  # "a" and "b" were committed before the call ran
    assert ledger.groups == [["a"], ["b"], ["c"]]


def test_it_finishes_queued_work_on_close_and_then_refuses_more(ledger: Ledger) -> None:
    writer: WriterThread[list[str]] = WriterThread(ledger, commit, max_rows=1000)
    futures = [writer.append([str(i)], 1) for i in range(20)]
    writer.close()
    assert all(future.done() and future.result() == 1 for future in futures)
    assert ledger.closed
    with pytest.raises(StoreClosed):
        writer.append(["late"], 1)
    with pytest.raises(StoreClosed):
        writer.call(lambda conn: None)


def test_it_runs_the_idle_hook_when_nothing_arrives(ledger: Ledger) -> None:
    idle = threading.Event()
    writer: WriterThread[list[str]] = WriterThread(
        ledger, commit, max_rows=1000, on_idle=lambda conn: idle.set(), idle_seconds=0.01
    )
    try:
        assert idle.wait(10)
    finally:
        writer.close()
