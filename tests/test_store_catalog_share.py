"""The key catalog is shared by every project: what one project can add is bounded, and no flood of
invented field names takes a column another project's queries use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from ingest_helpers import donation, http, post_native
from opswatch.server import limits
from opswatch.server.query import run_query
from opswatch.server.store.catalog import KeyCatalog
from opswatch.server.store.duckdb import DuckDBStore
from opswatch.server.testing import RunningServer, running_server

STAMP = "2026-01-01T00:00:00.000Z"
SEED_QUERY = (
    "SELECT churchId, COUNT(*) AS donation_count, SUM(amount) AS total_amount FROM logs "
    "WHERE operation = 'metrics.donation.completed' GROUP BY churchId ORDER BY total_amount DESC"
)


def catalog(**bounds: Any) -> KeyCatalog:
    settings: dict[str, Any] = {"promote_after": 1000, "max_columns": 10, "max_keys": 50}
    settings.update(bounds)
    return KeyCatalog(**settings)  # type: ignore[arg-type]


def junk(count: int, prefix: str) -> dict[str, Any]:
    return {f"{prefix}{number}": number for number in range(count)}


def adopt(keys: KeyCatalog, rows: list[dict[str, Any]], project: int) -> None:
    keys.adopt(keys.plan([(STAMP, row) for row in rows], [project] * len(rows)))


# -- the catalog alone --------------------------------------------------------------------------------


def test_it_adds_at_most_the_batch_bound_of_new_keys_per_project() -> None:
    keys = catalog(max_new_per_batch=10)
    plan = keys.plan([(STAMP, junk(11, "a")), (STAMP, junk(10, "b"))], [1, 2])
    owners = [info.project_id for info in plan.keys.values()]
    assert (owners.count(1), owners.count(2)) == (10, 10)


def test_it_adds_at_most_the_project_bound_of_keys_for_one_project() -> None:
    keys = catalog(max_keys_per_project=20)
    for batch in range(5):
        adopt(keys, [junk(10, f"x{batch}_")], 1)
    assert len(keys.keys) == 20
    adopt(keys, [{"church_id": "c1"}], 2)
    assert "church_id" in keys.keys


def test_a_full_catalog_drops_the_least_seen_key_of_the_largest_holder() -> None:
    keys = catalog(max_keys=30, max_keys_per_project=25)
    adopt(keys, [{"church_id": "c1", "amount": 1}] * 3, 1)
    adopt(keys, [junk(25, "flood")], 2)
    adopt(keys, [{"flood0": 1}] * 5, 2)  # seen more often than the other flood keys
    assert len(keys.keys) == 27
    adopt(keys, [junk(5, "other")], 3)  # three fit; two take the place of project 2's least-seen keys
    assert len(keys.keys) == 30
    assert sum(1 for info in keys.keys.values() if info.project_id == 3) == 5
    assert sum(1 for info in keys.keys.values() if info.project_id == 2) == 23
    assert "flood0" in keys.keys and "church_id" in keys.keys and "amount" in keys.keys


def test_a_full_catalog_of_equal_shares_takes_no_more_keys_from_either() -> None:
    keys = catalog(max_keys=20, max_keys_per_project=15)
    adopt(keys, [junk(10, "a")], 1)
    adopt(keys, [junk(10, "b")], 2)
    adopt(keys, [{"a_more": 1}], 1)
    adopt(keys, [{"b_more": 1}], 2)
    assert len(keys.keys) == 20
    assert "a_more" not in keys.keys and "b_more" not in keys.keys
    adopt(keys, [{"c0": 1}], 3)  # a project with nothing yet is under its share
    assert "c0" in keys.keys and len(keys.keys) == 20


def test_it_never_drops_a_documented_field_to_make_room() -> None:
    keys = catalog(max_keys=4, max_keys_per_project=4, protected=["church_id", "amount"])
    adopt(keys, [{"church_id": "c1", "amount": 1, "junk0": 1, "junk1": 1}], 2)
    adopt(keys, [{"a": 1}, {"b": 1}, {"c": 1}], 1)
    assert {"church_id", "amount"} <= set(keys.keys)
    assert "junk0" not in keys.keys and "junk1" not in keys.keys
    assert ("a" in keys.keys) + ("b" in keys.keys) + ("c" in keys.keys) == 2


def test_it_never_drops_a_promoted_key() -> None:
    keys = catalog(max_keys=4, max_keys_per_project=4, promote_after=1)
    adopt(keys, [junk(4, "hot")], 2)
    assert all(info.column for info in keys.keys.values())
    adopt(keys, [{"church_id": "c1"}], 1)
    assert "church_id" not in keys.keys and len(keys.keys) == 4


# -- the store and the server -------------------------------------------------------------------------


def event(project: int, **fields: Any) -> dict[str, Any]:
    record = donation(**fields)
    record["project_id"] = project
    return record


def test_the_store_keeps_a_dropped_keys_values_in_the_container(tmp_path: Path) -> None:
    with DuckDBStore(
        tmp_path / "events.duckdb", max_catalog_keys=limits.STORE_MAX_KEYS_PER_PROJECT + 10
    ) as store:
        for batch in range(6):
            store.append([event(2, **junk(100, f"f{batch}_"))])
        store.append([event(1, church_id=f"church_{n}") for n in range(20)])
        answer = run_query(store, SEED_QUERY)
        assert len(answer.rows) == 20
        dropped = run_query(store, "SELECT count(*) FROM logs WHERE attributes->>'f0_0' = '0'")
        assert dropped.rows == [(1,)]


def test_the_store_records_key_owners_across_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    with DuckDBStore(path) as store:
        store.append([event(1, church_id="c1")])
    with duckdb.connect(str(path)) as conn:  # what a version-1 file looked like
        conn.execute("ALTER TABLE attribute_keys DROP COLUMN project_id")
        conn.execute("UPDATE store_meta SET value = '1' WHERE key = 'schema_version'")
    with DuckDBStore(path) as store:
        store.append([event(1, campaign="spring")])
        found = run_query(store, "SELECT churchId, campaign FROM logs ORDER BY campaign NULLS FIRST").rows
        assert found == [("c1", None), ("church_7", "spring")]
    with duckdb.connect(str(path), read_only=True) as conn:
        owners = dict(conn.execute("SELECT key, project_id FROM attribute_keys").fetchall())
    assert owners["church_id"] is None and owners["campaign"] == 1


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path, retention_days=36500) as running:
        yield running


def test_a_flood_of_new_field_names_from_one_project_never_breaks_anothers_query(
    server: RunningServer,
) -> None:
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    created = http().post(f"{server.url}/api/0/projects", json={"name": "noisy"}, headers=admin)
    assert created.status_code in (200, 201), created.text
    noisy = created.json()
    noisy_id, noisy_key = noisy["id"], noisy["keys"][0]["key"]
    # 25 events of 400 new names each: 10,000 names, five times what the whole catalog holds.
    for number in range(25):
        record = {key: value for key, value in donation().items() if key not in ("church_id", "amount")}
        records = [{**record, "operation": "noise", **junk(400, f"k{number}_")}]
        answer = http().post(
            f"{server.url}/api/{noisy_id}/events/",
            content=b"".join(orjson.dumps(r) + b"\n" for r in records),
            headers={"Authorization": f"Bearer {noisy_key}"},
        )
        assert answer.status_code == 200, answer.text
    stats = server.ctx.store.stats()
    assert stats["attribute_keys"] <= limits.STORE_MAX_KEYS_PER_PROJECT + 10
    # The default project logs its donations afterwards; the seed's query runs as written.
    assert post_native(server, [donation(church_id=f"church_{n % 3}") for n in range(9)]).status_code == 200
    answer = http().post(f"{server.url}/api/0/query", json={"sql": SEED_QUERY}, headers=admin)
    assert answer.status_code == 200, answer.text
    assert {row[0] for row in answer.json()["rows"]} == {"church_0", "church_1", "church_2"}
