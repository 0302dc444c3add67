"""Native ingest, ``POST /api/<project>/events/``: NDJSON batches from the SDK's transport."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ingest_helpers import donation, post_native, stored_by_id
from opswatch.server.testing import RunningServer, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("native"), retention_days=36500) as running:
        yield running


def test_it_stores_a_batch_and_answers_with_counts(server: RunningServer) -> None:
    batch = [donation(), donation(amount=10), donation(church_id="church_9")]
    answer = post_native(server, batch)
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    records = stored_by_id(server)
    for sent in batch:
        got = records[sent["event_id"]]
        assert got["message"] == "Donation completed"
        assert got["church_id"] == sent["church_id"]
        assert got["amount"] == sent["amount"]
        assert got["project_id"] == server.project_id
        assert got["kind"] == "log"
        assert got["received_at"].endswith("Z")


def test_it_takes_gzip_and_the_x_opswatch_key_header(server: RunningServer) -> None:
    record = donation()
    answer = post_native(server, [record], gzipped=True, key="", headers={"X-Opswatch-Key": server.key})
    assert answer.json()["accepted"] == 1
    assert record["event_id"] in stored_by_id(server)


def test_it_stores_nothing_twice_when_a_batch_is_retried(server: RunningServer) -> None:
    batch = [donation() for _ in range(5)]
    assert post_native(server, batch).json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    assert post_native(server, batch).json() == {"accepted": 0, "duplicates": 5, "rejected": []}
    again = [*batch[:2], donation()]
    assert post_native(server, again).json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    ids = [r["event_id"] for r in [*batch, *again]]
    records = stored_by_id(server)
    assert all(i in records for i in ids)


def test_it_counts_a_repeated_event_id_inside_one_batch_once(server: RunningServer) -> None:
    record = donation()
    answer = post_native(server, [record, record])
    assert answer.json() == {"accepted": 1, "duplicates": 1, "rejected": []}


def test_it_keeps_good_events_and_reports_bad_ones_by_index(server: RunningServer) -> None:
    good = [donation(), donation()]
    lines = [
        good[0],
        b"{not json",
        b"[1, 2]",
        donation(level="shouting"),
        donation(timestamp="yesterday"),
        donation(event_id="has spaces in it"),
        donation(kind="nonsense"),
        good[1],
    ]
    answer = post_native(server, lines)
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3, 4, 5, 6]
    reasons = [r["reason"] for r in body["rejected"]]
    assert "JSON" in reasons[0]
    assert "object" in reasons[1]
    assert "level" in reasons[2]
    assert "timestamp" in reasons[3]
    assert "event_id" in reasons[4]
    assert "kind" in reasons[5]
    records = stored_by_id(server)
    assert good[0]["event_id"] in records and good[1]["event_id"] in records


def test_it_skips_blank_lines_without_counting_them(server: RunningServer) -> None:
    first, second = donation(), donation()
    body = b"\n\n" + ndjson_line(first) + b"\n   \n" + ndjson_line(second) + b"\n\n"
    answer = post_native(server, body)
    assert answer.json() == {"accepted": 2, "duplicates": 0, "rejected": []}


def ndjson_line(record: dict[str, object]) -> bytes:
    import orjson

    return orjson.dumps(record)


def test_it_answers_400_with_reasons_when_nothing_is_valid(server: RunningServer) -> None:
    answer = post_native(server, [b"nope", b"{}garbage"])
    assert answer.status_code == 400
    body = answer.json()
    assert body["accepted"] == 0
    assert [r["index"] for r in body["rejected"]] == [0, 1]


def test_it_answers_400_for_an_empty_body(server: RunningServer) -> None:
    answer = post_native(server, b"")
    assert answer.status_code == 400
    assert "no events" in answer.json()["detail"]


def test_it_refuses_a_wrong_key_a_missing_key_and_another_projects_project(server: RunningServer) -> None:
    assert post_native(server, [donation()], key="0" * 32).status_code == 401
    missing = httpx.post(f"{server.url}/api/1/events/", content=b"{}\n")
    assert missing.status_code == 401
    assert "key" in missing.json()["detail"]
    assert post_native(server, [donation()], project=99).status_code == 401
    assert post_native(server, [donation()], project="one").status_code == 404  # type: ignore[arg-type]


def test_it_normalizes_timestamps_levels_and_missing_fields(server: RunningServer) -> None:
    offset = donation(timestamp="2025-11-01T04:00:00.5+02:00", level="WARNING")
    epoch = donation(timestamp=1761962400.25, level=40)
    bare = {"message": "no id, no time, no level"}
    answer = post_native(server, [offset, epoch, bare])
    assert answer.json()["accepted"] == 3
    records = stored_by_id(server)
    assert records[offset["event_id"]]["timestamp"] == "2025-11-01T02:00:00.500Z"
    assert records[offset["event_id"]]["level"] == "warn"
    assert records[epoch["event_id"]]["timestamp"] == "2025-11-01T02:00:00.250Z"
    assert records[epoch["event_id"]]["level"] == "error"
    assert records[epoch["event_id"]]["kind"] == "error"
    (made,) = [r for r in records.values() if r.get("message") == "no id, no time, no level"]
    assert len(made["event_id"]) == 32
    assert made["level"] == "info"
    assert made["timestamp"] == made["received_at"]


def test_it_classifies_records_with_an_error_object_as_errors(server: RunningServer) -> None:
    failed = donation(level="info", error={"type": "CardError", "message": "declined", "stack": []})
    check_in = donation(kind="check_in", monitor_slug="nightly", status="ok")
    post_native(server, [failed, check_in])
    records = stored_by_id(server)
    assert records[failed["event_id"]]["kind"] == "error"
    assert records[check_in["event_id"]]["kind"] == "check_in"


def test_it_replaces_server_fields_a_sender_set(server: RunningServer) -> None:
    record = donation(project_id=42, received_at="1999-01-01T00:00:00.000Z")
    post_native(server, [record])
    got = stored_by_id(server)[record["event_id"]]
    assert got["project_id"] == server.project_id
    assert got["received_at"] != "1999-01-01T00:00:00.000Z"


def test_it_redacts_what_the_sender_did_not(server: RunningServer) -> None:
    record = donation(
        message="charge for jane.doe@example.com with card 4111 1111 1111 1111",
        password="hunter2",
        customer={"email": "jane.doe@example.com", "api_key": "abc123", "note": "Bearer abcdefghijklmnop"},
        headers=[{"authorization": "Basic dXNlcjpwYXNz"}],
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    )
    post_native(server, [record])
    got = stored_by_id(server)[record["event_id"]]
    assert got["message"] == "charge for j***@example.com with card [REDACTED]"
    assert got["password"] == "[REDACTED]"
    assert got["customer"]["email"] == "j***@example.com"
    assert got["customer"]["api_key"] == "[REDACTED]"
    assert got["customer"]["note"] == "Bearer [REDACTED]"
    assert got["headers"] == [{"authorization": "[REDACTED]"}]
    assert got["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_it_keeps_an_event_id_that_looks_like_a_card_number_intact(server: RunningServer) -> None:
    # 16 digits that pass the Luhn check, inside a hex id: redaction must not touch ids.
    record = donation(event_id="abcd4111111111111111ef0123456789")
    post_native(server, [record])
    post_native(server, [record])
    assert record["event_id"] in stored_by_id(server)


def test_it_accepts_the_path_without_the_trailing_slash(server: RunningServer) -> None:
    record = donation()
    answer = httpx.post(
        f"{server.url}/api/1/events",
        content=ndjson_line(record),
        headers={"Authorization": f"Bearer {server.key}"},
    )
    assert answer.status_code == 200
