"""The event store is idempotent by (project_id, event_id), whatever the records' timestamps.

A record resent after a restart without a timestamp (Sentry check-ins never carry one) is dated on
arrival, so it comes back with another timestamp: it must still be stored once. And one project's
event id must never hide another project's event with the same id.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from events_cast import NOV_1, log_line
from ingest_helpers import donation, post_native
from killed_writer import acknowledged_before_kill
from opswatch.server.state.projects import create_project
from opswatch.server.store import rows
from opswatch.server.store.duckdb import DuckDBStore
from opswatch.server.testing import running_server

HOUR = 3600.0


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "events.duckdb"


@pytest.fixture
def store(store_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(store_path, clock=lambda: NOV_1) as opened:
        yield opened


def check_in(index: int, project_id: int = 1) -> dict[str, Any]:
    """The nightly job checks in, as a Sentry SDK sends it: no timestamp, no arrival time."""
    return {
        "event_id": f"c{index:031x}",
        "project_id": project_id,
        "kind": "check_in",
        "level": "info",
        "message": "check-in nightly-report ok",
        "monitor_slug": "nightly-report",
    }


def count(store: DuckDBStore, sql: str = "SELECT count(*) FROM logs") -> object:
    return store.query(sql, max_rows=1, timeout=30).rows[0][0]


def test_it_keeps_the_same_event_id_of_two_projects_apart(store: DuckDBStore) -> None:
    assert store.append([log_line(1, project_id=2, message="project two")]) == 1
    assert store.append([log_line(1, project_id=1, message="project one")]) == 1
    assert count(store, "SELECT count(DISTINCT project_id) FROM logs WHERE event_id = 'a" + "0" * 30 + "1'") == 2
    assert store.get_events([log_line(1)["event_id"]], project_id=1)[log_line(1)["event_id"]]["message"] == (
        "project one"
    )


def test_it_skips_a_repeat_of_the_same_project_and_id_in_one_batch_but_keeps_other_projects(
    store: DuckDBStore,
) -> None:
    batch = [log_line(1, project_id=1), log_line(1, project_id=2), log_line(1, project_id=1)]
    assert store.append_new(batch) == [0, 1]
    assert count(store) == 2


def test_it_skips_a_record_resent_without_a_timestamp_after_a_restart(store_path: Path) -> None:
    with DuckDBStore(store_path, clock=lambda: NOV_1) as first:
        assert first.append([check_in(i) for i in range(10)]) == 10
    with DuckDBStore(store_path, clock=lambda: NOV_1 + HOUR) as second:
        assert second.append([check_in(i) for i in range(12)]) == 2
        assert count(second) == 12


def test_it_skips_a_repeat_whose_timestamp_changed(store: DuckDBStore) -> None:
    store.append([log_line(1, at=NOV_1)])
    assert store.append([log_line(1, at=NOV_1 + 5 * 86_400)]) == 0
    assert count(store) == 1


def test_it_stores_two_different_records_whose_keys_share_a_hash(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 64-bit hash collision cannot be found on purpose: make every key collide instead.
    monkeypatch.setattr(rows, "key_hash", lambda project_id, event_id: 42)
    assert store.append([log_line(1)]) == 1
    assert store.append([log_line(2), log_line(3, project_id=2)]) == 2
    assert store.append([log_line(1), log_line(2), log_line(4)]) == 1
    assert count(store) == 4


def test_it_forgets_keys_with_the_retention_and_never_before(store_path: Path) -> None:
    now = [NOV_1]
    with DuckDBStore(store_path, clock=lambda: now[0]) as opened:
        opened.append([check_in(1)])
        now[0] = NOV_1 + 10 * 86_400
        opened.delete_older_than(30)
        assert opened.append([check_in(1)]) == 0
        now[0] = NOV_1 + 40 * 86_400
        opened.delete_older_than(30)
        keys = opened.query("SELECT count(*) FROM logs", max_rows=1, timeout=30).rows[0][0]
        assert keys == 0  # the check-in itself went with the retention
    with duckdb.connect(str(store_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM event_keys").fetchone() == (0,)


def test_it_upgrades_a_file_without_the_key_index_and_keeps_its_events_idempotent(store_path: Path) -> None:
    with DuckDBStore(store_path, clock=lambda: NOV_1) as first:
        first.append([check_in(i) for i in range(5)])
    with duckdb.connect(str(store_path)) as conn:  # what schema version 2 left: no key index
        conn.execute("DROP TABLE event_keys")
        conn.execute("UPDATE store_meta SET value = '2' WHERE key = 'schema_version'")
    with DuckDBStore(store_path, clock=lambda: NOV_1 + HOUR) as upgraded:
        assert upgraded.append([check_in(i) for i in range(6)]) == 1
        assert count(upgraded) == 6


@pytest.mark.slow
def test_it_stores_check_ins_once_when_all_are_resent_after_a_kill(store_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_store_idempotency import check_in
        from opswatch.server.store.duckdb import DuckDBStore
        store = DuckDBStore({str(store_path)!r})
        batch = 0
        while True:
            store.append([check_in(batch * 100 + i) for i in range(100)])
            print(batch, flush=True)
            batch += 1
        """
    )
    acknowledged = acknowledged_before_kill(script, at_least=20)
    # The client never heard about the batches after the last answer it got: it sends them all again,
    # and every one it did hear about too (a spool replayed from the start), an hour later.
    resent = [check_in(i) for i in range((acknowledged + 3) * 100)]
    with DuckDBStore(store_path, clock=lambda: NOV_1 + HOUR) as store:
        store.append(resent)
        assert count(store, "SELECT count(*) FROM logs") == len(resent)
        assert count(store, "SELECT count(DISTINCT event_id) FROM logs") == len(resent)


def test_it_answers_a_second_projects_event_id_as_new_over_http(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        other = create_project(server.ctx.engine, "the other service")
        shared = donation()
        answer = post_native(server, [shared], key=other.keys[0].key, project=other.id)
        assert answer.status_code == 200, answer.text
        answer = post_native(server, [shared])
        assert answer.status_code == 200, answer.text
        assert answer.json()["duplicates"] == 0
        again = post_native(server, [shared])
        assert again.json()["duplicates"] == 1
        found = server.ctx.store.query(
            f"SELECT project_id FROM logs WHERE event_id = '{shared['event_id']}' ORDER BY project_id",
            max_rows=5,
            timeout=30,
        )
        assert [row[0] for row in found.rows] == sorted([server.project_id, other.id])
