"""Span batches that wait for the writer at the same time are committed together (``spans.SpanCommits``):
one transaction for the group, each caller told how many of its own spans were new, a bad batch failing
only its own caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from opswatch.server.store import layout
from opswatch.server.store.catalog import KeyCatalog
from opswatch.server.store.spans import SpanCommits
from opswatch.server.traces.model import span_row

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
START_NS = 1_764_756_000 * 10**9


def span(number: int, *, trace: str = TRACE) -> dict[str, Any]:
    row = span_row(
        trace_id=trace, span_id=f"{number + 1:016x}", parent_span_id=None, name=f"op {number}", kind="internal",
        start_ns=START_NS + number * 1000, end_ns=START_NS + number * 1000 + 5_000_000,
        received_at="2025-12-03T10:00:00.000Z",
    )  # fmt: skip
    row["project_id"] = 1
    return row


def catalog() -> KeyCatalog:
    return KeyCatalog(reserved=layout.SPAN_RESERVED, promote_after=100, max_columns=256, max_keys=2000)


class GatedWriter:
    """A writer thread stand-in: runs each call on its own thread, but only once ``gate`` is set, so the
    test decides when the first commit starts and who is queued by then."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.gate = threading.Event()
        self.calls = 0

    def call(self, fn: Callable[[Any], None]) -> None:
        self.calls += 1
        self.gate.wait(30)
        fn(self.conn)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Any]:
    connection = duckdb.connect(str(tmp_path / "spans.duckdb"))
    for statement in layout.span_statements():
        connection.execute(statement)
    yield connection
    connection.close()


def run_together(commits: SpanCommits, writer: GatedWriter, batches: list[list[dict[str, Any]]]) -> list[Any]:
    """Append every batch from its own thread; open the gate once all are queued; each one's result."""
    results: list[Any] = [None] * len(batches)

    def append(index: int) -> None:
        try:
            results[index] = commits.append(batches[index])
        except Exception as err:
            results[index] = err

    threads = [threading.Thread(target=append, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(commits._queued) < len(batches) and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.gate.set()
    for thread in threads:
        thread.join(30)
    return results


def count(conn: Any) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {layout.SPANS_TABLE}").fetchone()[0])


def test_it_commits_batches_queued_together_in_one_transaction(conn: Any) -> None:
    writer = GatedWriter(conn)
    commits = SpanCommits(writer.call, catalog(), max_rows=10_000)
    batches = [[span(b * 10 + i) for i in range(10)] for b in range(5)]
    assert run_together(commits, writer, batches) == [10] * 5
    assert (writer.calls, commits.commits, count(conn)) == (1, 1, 50)


def test_it_counts_a_span_sent_in_two_batches_of_a_group_for_the_first_only(conn: Any) -> None:
    writer = GatedWriter(conn)
    commits = SpanCommits(writer.call, catalog(), max_rows=10_000)
    results = run_together(commits, writer, [[span(1), span(2)], [span(2), span(3)]])
    assert sorted(results) == [1, 2]
    assert count(conn) == 3
    assert commits.append([span(3), span(4)]) == 1  # a retry later: only the new one counts


def test_it_splits_a_group_at_max_rows(conn: Any) -> None:
    writer = GatedWriter(conn)
    commits = SpanCommits(writer.call, catalog(), max_rows=25)
    batches = [[span(b * 10 + i) for i in range(10)] for b in range(5)]
    assert run_together(commits, writer, batches) == [10] * 5
    assert commits.commits == 3  # 20 + 20 + 10 spans
    assert count(conn) == 50


def test_it_fails_only_the_batch_that_cannot_be_stored(conn: Any) -> None:
    writer = GatedWriter(conn)
    commits = SpanCommits(writer.call, catalog(), max_rows=10_000)
    bad = {**span(99), "timestamp": "not a time"}
    results = run_together(commits, writer, [[span(1)], [bad], [span(2)]])
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], duckdb.Error)
    assert count(conn) == 2


def test_it_fails_every_queued_caller_when_the_writer_is_closed(conn: Any) -> None:
    def closed(fn: Callable[[Any], None]) -> None:
        raise RuntimeError("the event store is closed")

    with pytest.raises(RuntimeError, match="closed"):
        SpanCommits(closed, catalog(), max_rows=100).append([span(1)])
