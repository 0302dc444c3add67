"""What only the ClickHouse event store promises: its table layout, the versioned schema, insert
deduplication when an answer is lost, ClickHouse's read-only limits, ``OPSWATCH_EVENTS_URL``, and a
server on it storing logs and spans.

The store's shared promises are in ``test_store_contract.py``. These run on the ClickHouse engine in
process (chdb); there is no ClickHouse server on this machine.
"""

from __future__ import annotations

import importlib.util
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import in_ci, require_service
from events_cast import NOV_1, log_line
from killed_writer import acknowledged_before_kill
from opswatch.config import ConfigError
from opswatch.server.config import ServerSettings
from opswatch.server.context import open_store
from opswatch.server.query import run_query
from opswatch.server.store.base import QueryError, QueryRefused

if importlib.util.find_spec("chdb") is None and not in_ci():  # under CI the import below fails the run
    pytest.skip("chdb is not available: it is in the dev extra: pip install -e '.[dev]'", allow_module_level=True)

from opswatch.server.store.clickhouse import ClickHouseStoreError, open_chdb
from opswatch.server.store.clickhouse_client import ChdbClient, TransportError

DAY = 86_400.0


def _one(path: Path, sql: str) -> Any:
    client = ChdbClient(path)
    try:
        return client.query(sql)[1][0][0]
    finally:
        client.close()


def test_it_keeps_events_in_a_replacing_merge_tree_by_day_with_a_native_ttl(tmp_path: Path) -> None:
    with open_chdb(tmp_path, retention_days=30) as store:
        assert store.append([log_line(i, at=NOV_1 + (i % 3) * DAY) for i in range(9)]) == 9
    ddl = _one(tmp_path, "SHOW CREATE TABLE event_rows")
    assert "ENGINE = ReplacingMergeTree" in ddl
    assert "PARTITION BY toDate(timestamp)" in ddl
    assert "ORDER BY (project_id, event_id)" in ddl
    assert "TTL toDateTime(timestamp) + toIntervalDay(30)" in ddl
    partitions = "SELECT uniqExact(partition) FROM system.parts WHERE table = 'event_rows' AND active"
    assert _one(tmp_path, partitions) == 3


def test_it_changes_the_ttl_when_the_retention_changes(tmp_path: Path) -> None:
    open_chdb(tmp_path, retention_days=30).close()
    open_chdb(tmp_path, retention_days=7).close()
    assert "toIntervalDay(7)" in _one(tmp_path, "SHOW CREATE TABLE event_rows")


def test_it_records_the_schema_version_and_refuses_a_newer_one(tmp_path: Path) -> None:
    open_chdb(tmp_path).close()
    # 2 since the key catalog records each key's owning project (the per-project shares).
    assert _one(tmp_path, "SELECT value FROM store_meta FINAL WHERE key = 'schema_version'") == "2"
    client = ChdbClient(tmp_path)
    client.insert_json(
        "store_meta", b'{"key": "schema_version", "value": "99", "version": 18446744073709551615}'
    )
    client.close()
    with pytest.raises(ClickHouseStoreError, match="schema version 99"):
        open_chdb(tmp_path)


def test_it_records_key_owners_across_an_upgrade_from_version_1(tmp_path: Path) -> None:
    with open_chdb(tmp_path) as store:
        store.append([log_line(1, church_id="c1")])
    client = ChdbClient(tmp_path)  # what a version-1 database looked like
    client.command("ALTER TABLE attribute_keys DROP COLUMN project_id", {"mutations_sync": 2})
    downgrade = {"key": "schema_version", "value": "1", "version": time.time_ns()}
    client.insert_json("store_meta", orjson.dumps(downgrade))
    client.close()
    with open_chdb(tmp_path) as store:
        store.append([log_line(2, campaign="spring", project_id=2)])
        found = run_query(store, "SELECT church_id, campaign FROM logs ORDER BY campaign NULLS FIRST").rows
        assert found == [("c1", None), (None, "spring")]
    owners = "SELECT key, project_id FROM attribute_keys FINAL ORDER BY key"
    client = ChdbClient(tmp_path)
    try:
        assert client.query(owners)[1] == [("campaign", 2), ("church_id", None)]
        assert client.query("SELECT value FROM store_meta FINAL WHERE key = 'schema_version'")[1] == [("2",)]
    finally:
        client.close()


class LosesFirstAnswer(ChdbClient):
    """The chdb engine, except that the first insert into ``event_rows`` lands and its answer is lost."""

    lost = 0

    def insert_json(self, table: str, lines: bytes, settings: Any = None) -> None:
        super().insert_json(table, lines, settings)
        if table == "event_rows" and not self.lost:
            self.lost += 1
            raise TransportError("connection reset by peer")


def test_it_stores_a_block_once_when_the_answer_to_its_insert_was_lost(tmp_path: Path) -> None:
    from opswatch.server.store.clickhouse import ClickHouseStore

    client = LosesFirstAnswer(tmp_path)
    with ClickHouseStore(client) as store:
        assert store.append([log_line(i) for i in range(20)]) == 20
        assert client.lost == 1  # the insert was sent twice
        assert run_query(store, "SELECT count(*), count(DISTINCT event_id) FROM logs").rows == [(20, 20)]


def test_it_refuses_clickhouse_functions_that_reach_outside_the_tables(tmp_path: Path) -> None:
    with open_chdb(tmp_path) as store:
        store.append([log_line(1)])
        for name, sql in [
            ("dictget", "SELECT dictGet('d', 'x', 1) FROM logs"),
            ("getsetting", "SELECT getSetting('readonly') FROM logs"),
            ("hostname", "SELECT hostName() FROM logs"),
        ]:
            with pytest.raises(QueryRefused, match=f"function {name} is not allowed"):
                run_query(store, sql)
        with pytest.raises(QueryRefused):  # not even parsed as a call in the documented dialect
            run_query(store, "SELECT file('/etc/passwd') FROM logs")


def test_it_lets_no_user_sql_carry_settings_or_formats(tmp_path: Path) -> None:
    with open_chdb(tmp_path) as store:
        store.append([log_line(1)])
        for sql in (
            "SELECT count(*) FROM logs SETTINGS max_execution_time = 1000",
            "SELECT 1 FROM logs FORMAT CSV",
        ):
            with pytest.raises(QueryRefused, match="does not parse"):
                run_query(store, sql)


def test_it_runs_user_sql_read_only(tmp_path: Path) -> None:
    with open_chdb(tmp_path) as store:
        store.append([log_line(1)])
        with pytest.raises(QueryError, match="readonly"):
            store.query("DELETE FROM event_rows WHERE true", max_rows=10, timeout=10)
        assert run_query(store, "SELECT count(*) FROM logs").rows == [(1,)]


def test_it_checks_the_clickhouse_text_for_tables_outside_opswatch_too(tmp_path: Path) -> None:
    with open_chdb(tmp_path) as store:  # store.query skips run_query's check: the second check still holds
        store.append([log_line(1)])
        for sql, reason in [
            ("SELECT count(*) FROM system.users", r"qualified table names are not allowed \(system\.users\)"),
            ("SELECT * FROM other.event_rows", r"qualified table names are not allowed"),
            ("SELECT * FROM url('http://127.0.0.1:9/x', CSV, 'a Int32')", r"table functions .*\(url\)"),
            ("SELECT * FROM remote('127.0.0.1:9000', 'system', 'one')", r"table functions .*\(remote\)"),
        ]:
            with pytest.raises(QueryRefused, match=reason):
                store.query(sql, max_rows=10, timeout=10)


def test_it_runs_user_sql_under_settings_that_refuse_table_functions_and_system_users(tmp_path: Path) -> None:
    from opswatch.server.store.clickhouse_client import ClickHouseError
    from opswatch.server.store.clickhouse_sql import query_settings

    settings = query_settings(max_rows=10, timeout=10)
    assert (settings["readonly"], settings["max_result_rows"]) == (1, 11)
    client = ChdbClient(tmp_path)  # ClickHouse itself, as if a check had missed something
    try:
        for sql in (
            "SELECT count() FROM file('/etc/passwd', LineAsString)",
            "SELECT count() FROM url('http://127.0.0.1:9/x', CSV, 'a Int32')",
        ):
            with pytest.raises(ClickHouseError, match="readonly mode") as refused:
                client.query(sql, settings)
            assert refused.value.code == 164  # READONLY: refused before any file or socket is opened
        with pytest.raises(ClickHouseError, match="SHOW USERS") as denied:
            client.query("SELECT name FROM system.users", settings)
        assert denied.value.code == 497  # ACCESS_DENIED
        assert client.query("SELECT count() FROM numbers(5)", settings)[1] == [(5,)]  # and reads do run
    finally:
        client.close()


def test_it_names_the_events_url_when_it_is_not_clickhouse(tmp_path: Path) -> None:
    settings = ServerSettings.load({}, data_dir=tmp_path, events_url="postgresql://db/events")
    with pytest.raises(ConfigError, match=r"events_url.*clickhouse://"):
        open_store(settings)


def test_it_names_the_events_url_when_no_server_answers(tmp_path: Path) -> None:
    if importlib.util.find_spec("clickhouse_connect") is None:
        require_service("clickhouse-connect", "it is in the clickhouse extra: pip install -e '.[clickhouse]'")
    url = "clickhouse://u:secret-pw@127.0.0.1:9/opswatch"
    settings = ServerSettings.load({}, data_dir=tmp_path, events_url=url)
    with pytest.raises(ConfigError, match=r"events_url.*127\.0\.0\.1:9") as refused:
        open_store(settings)
    assert "secret-pw" not in str(refused.value)  # the message never shows the password


def test_it_answers_up_to_the_result_byte_limit_and_refuses_past_it(tmp_path: Path) -> None:
    with open_chdb(tmp_path, max_result_bytes=4000) as store:
        store.append([log_line(i, message="x" * 100) for i in range(50)])
        assert len(run_query(store, "SELECT message FROM logs LIMIT 10").rows) == 10  # ~1 KB
        with pytest.raises(QueryError, match=r"larger than 4000 bytes \(max_result_bytes\)"):
            run_query(store, "SELECT message FROM logs")  # ~5 KB: refused, never cut without saying so


def test_it_stops_a_query_past_the_memory_limit_naming_it(tmp_path: Path) -> None:
    with open_chdb(tmp_path, max_query_memory_bytes=16 * 2**20) as store:
        store.append([log_line(i, message=f"message {i}" * 20) for i in range(2000)])
        hungry = "SELECT a.message, b.event_id, count(*) FROM logs a, logs b GROUP BY 1, 2 ORDER BY 3 LIMIT 5"
        limit = r"needs more memory than the server allows \(max_memory_usage 16777216 bytes\)"
        with pytest.raises(QueryError, match=limit):
            run_query(store, hungry)
        assert run_query(store, "SELECT count(*) FROM logs").rows == [(2000,)]  # and it answers on


def test_a_server_on_the_clickhouse_store_ingests_queries_and_tails(tmp_path: Path) -> None:
    from ingest_helpers import donation, http, post_native
    from opswatch.server.testing import running_server

    store = open_chdb(tmp_path / "clickhouse", retention_days=30)
    with running_server(tmp_path, store=store) as server:
        sent = [donation(church_id=f"church_{i % 2}", amount=10.0 * i) for i in range(6)]
        assert post_native(server, sent).status_code == 200
        post_native(server, sent)  # a retry changes nothing
        sql = "SELECT churchId, COUNT(*) AS n, SUM(amount) AS total FROM logs GROUP BY churchId ORDER BY 1"
        answer = http().post(f"{server.url}/api/0/query", json={"sql": sql}, headers=server.admin_headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"] == [["church_0", 3, 60.0], ["church_1", 3, 90.0]]
        slow = {"sql": "SELECT count(*) FROM logs a, logs b, logs c, logs d, logs e, logs f", "timeout": 0.2}
        post_native(server, [donation() for _ in range(200)])
        timed_out = http().post(f"{server.url}/api/0/query", json=slow, headers=server.admin_headers)
        assert timed_out.status_code == 408
        tail = http().get(f"{server.url}/api/0/events", params={"limit": 2}, headers=server.admin_headers)
        assert tail.status_code == 200
        assert len(tail.json()["events"]) == 2


@pytest.mark.slow
def test_it_loses_nothing_acknowledged_when_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from events_cast import log_line
        from opswatch.server.store.clickhouse import open_chdb
        store = open_chdb({str(tmp_path)!r})
        batch = 0
        while True:
            store.append([log_line(batch * 1000 + i) for i in range(500)])
            print(batch, flush=True)
            batch += 1
        """
    )
    acknowledged = acknowledged_before_kill(script, at_least=5)
    with open_chdb(tmp_path) as store:
        stored = {row[0] for row in run_query(store, "SELECT event_id FROM logs", max_rows=100_000).rows}
        total = run_query(store, "SELECT count(*) FROM logs").rows[0][0]
    expected = {
        log_line(batch * 1000 + i)["event_id"] for batch in range(acknowledged + 1) for i in range(500)
    }
    assert expected <= stored
    assert total == len(stored)


def _span_line(span_id: str) -> dict[str, Any]:
    """A span as the SDK sends it in a native batch."""
    return {
        "kind": "span",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": span_id,
        "name": "job",
        "span_kind": "internal",
        "start_unix_nano": 1_764_756_000_000_000_000,
        "duration_ms": 1.5,
        "timestamp": "2025-12-03T10:00:00.000Z",
        "level": "info",
        "message": "job",
    }


def test_a_server_on_the_clickhouse_store_stores_the_logs_and_spans_of_a_native_batch(tmp_path: Path) -> None:
    from ingest_helpers import post_native
    from opswatch.server.testing import running_server

    store = open_chdb(tmp_path / "clickhouse")
    with running_server(tmp_path, store=store) as server:
        log = {
            "timestamp": "2025-12-03T10:00:00.000Z",
            "level": "info",
            "message": "a log",
            "event_id": "e" * 32,
        }
        answer = post_native(server, [log, _span_line("00f067aa0ba902b7")])
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 2
        assert post_native(server, [log, _span_line("00f067aa0ba902b7")]).json()["duplicates"] == 2
        assert run_query(store, "SELECT message FROM logs").rows == [("a log",)]
        assert run_query(store, "SELECT name, duration_ms, project_id FROM spans").rows == [
            ("job", 1.5, server.project_id)
        ]
