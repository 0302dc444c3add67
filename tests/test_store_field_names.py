"""Fields named like the store's own columns: each user field is a column of ``logs`` under its own name.

``seq`` is the event table's internal arrival number; issue 15 found a field named ``seq`` answering only
to ``attributes->>'seq'`` (``SELECT seq`` was a Binder Error).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from events_cast import log_line
from opswatch.server.store.duckdb import DuckDBStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "events.duckdb", promote_after=3, idle_checkpoint_seconds=60) as opened:
        yield opened


def select(store: DuckDBStore, sql: str) -> list[tuple[object, ...]]:
    return store.query(sql, max_rows=1000, timeout=10).rows


def test_it_selects_a_field_named_seq_by_its_name_before_and_after_promotion(store: DuckDBStore) -> None:
    store.append([log_line(1, seq=7)])
    assert select(store, "SELECT seq FROM logs") == [(7,)]  # a cold key, read from the container

    store.append([log_line(n, seq=100 + n) for n in range(2, 6)])  # past promote_after: a column of its own
    assert select(store, "SELECT seq FROM logs ORDER BY seq") == [(7,), (102,), (103,), (104,), (105,)]
    assert "seq" in store.describe().columns
    assert [r["seq"] for r in store.tail().records] == [7, 102, 103, 104, 105]


def test_it_keeps_the_internal_arrival_order_apart_from_a_field_named_seq(store: DuckDBStore) -> None:
    store.append([log_line(n, message=f"m{n}", seq=-n) for n in range(1, 6)])
    page = store.tail(limit=2)  # the tail cursor is the internal seq, not the field
    assert [r["message"] for r in page.records] == ["m4", "m5"]
    assert [r["message"] for r in store.tail(after=page.cursor - 2).records] == ["m4", "m5"]
