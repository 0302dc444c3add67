"""Every ingest limit (``opswatch.server.limits``) at its edge (decompression bombs, measured on the
server process: ``test_ingest_bombs.py``).

Each limit is tried at exactly its value (taken) and one past it (refused with 413 or a per-event
reason); nothing is cut silently except a ping's output, which says so.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from ingest_helpers import create_monitor, donation, http, post_native, stored_by_id
from opswatch.server import limits
from opswatch.server.testing import RunningServer, running_server

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("limits"), retention_days=36500) as running:
        yield running


def sized(size: int, **fields: Any) -> bytes:
    """A donation line of exactly ``size`` bytes (padded in a ``note`` field)."""
    record = donation(note="", **fields)
    base = len(orjson.dumps(record))
    record["note"] = "x" * (size - base)
    line = orjson.dumps(record)
    assert len(line) == size
    return line


def envelope(*items: tuple[dict[str, Any], bytes], header: dict[str, Any] | None = None) -> bytes:
    parts = [orjson.dumps(header or {})]
    for item_header, payload in items:
        parts += [orjson.dumps(item_header), payload]
    return b"\n".join(parts)


def post_envelope(server: RunningServer, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return http().post(
        f"{server.url}/api/{server.project_id}/envelope/?sentry_key={server.key}",
        content=body,
        headers=headers,
    )


# -- the request ------------------------------------------------------------------------------------


def test_it_refuses_a_declared_body_over_the_limit_before_reading_it(server: RunningServer) -> None:
    body = b" " * (limits.MAX_BODY_BYTES + 1)
    answer = post_native(server, body)
    assert answer.status_code == 413
    assert "20,971,520" in answer.json()["detail"]


def test_it_takes_a_body_of_exactly_the_limit(server: RunningServer) -> None:
    record = donation()
    line = orjson.dumps(record) + b"\n"
    body = line + b" " * (limits.MAX_BODY_BYTES - len(line))
    answer = post_native(server, body)
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 1


def test_it_refuses_a_chunked_body_that_grows_past_the_limit(server: RunningServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(21):
            yield b" " * MiB

    answer = http().post(
        f"{server.url}/api/{server.project_id}/events/",
        content=chunks(),
        headers={"Authorization": f"Bearer {server.key}"},
    )
    assert answer.status_code == 413


@functools.cache
def gzip_of_zeros(size: int, members: int = 1) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * MiB
    member = b"".join(compressor.compress(chunk) for _ in range(size // MiB)) + compressor.flush()
    return member * members


@pytest.mark.slow
def test_it_takes_a_native_body_that_inflates_to_exactly_the_limit(server: RunningServer) -> None:
    line = orjson.dumps(donation()) + b"\n"
    body = line + b" " * (limits.MAX_NATIVE_DECOMPRESSED_BYTES - len(line))
    answer = post_native(server, gzip.compress(body, 1), headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 200


def test_it_refuses_a_native_body_that_inflates_one_byte_past_the_limit(server: RunningServer) -> None:
    body = b" " * (limits.MAX_NATIVE_DECOMPRESSED_BYTES + 1)
    answer = post_native(server, gzip.compress(body, 1), headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 413
    assert "decompressed" in answer.json()["detail"]


def test_it_refuses_a_corrupt_or_unknown_encoding(server: RunningServer) -> None:
    corrupt = post_native(server, b"\x1f\x8b not really gzip", headers={"Content-Encoding": "gzip"})
    assert corrupt.status_code == 400
    assert "gzip" in corrupt.json()["detail"]
    truncated = post_native(
        server, gzip.compress(b'{"message": "x"}\n')[:-6], headers={"Content-Encoding": "gzip"}
    )
    assert truncated.status_code == 400
    unknown = post_native(server, b"{}", headers={"Content-Encoding": "lzma"})
    assert unknown.status_code == 415


# -- a batch ----------------------------------------------------------------------------------------


def test_it_takes_exactly_the_most_events_per_batch(server: RunningServer) -> None:
    body = b"{}\n" * limits.MAX_EVENTS_PER_BATCH
    answer = post_native(server, body, gzipped=True)
    assert answer.status_code == 200
    assert answer.json()["accepted"] == limits.MAX_EVENTS_PER_BATCH


def test_it_refuses_a_batch_with_one_event_too_many(server: RunningServer) -> None:
    body = b"{}\n" * (limits.MAX_EVENTS_PER_BATCH + 1)
    answer = post_native(server, body, gzipped=True)
    assert answer.status_code == 413
    assert "10,001 events" in answer.json()["detail"]


# -- an event ---------------------------------------------------------------------------------------


def test_it_takes_an_event_of_exactly_the_size_limit_and_refuses_one_byte_more(server: RunningServer) -> None:
    fits, over = sized(limits.MAX_EVENT_BYTES), sized(limits.MAX_EVENT_BYTES + 1)
    answer = post_native(server, [fits, over])
    assert answer.json()["accepted"] == 1
    (rejected,) = answer.json()["rejected"]
    assert rejected["index"] == 1
    assert "1,048,577 bytes" in rejected["reason"]


def test_it_limits_the_number_of_fields(server: RunningServer) -> None:
    record = donation()
    fits = {**record, **{f"f{i}": i for i in range(limits.MAX_FIELDS_PER_EVENT - len(record))}}
    over = {**fits, "one_more": 1, "event_id": donation()["event_id"]}
    answer = post_native(server, [fits, over]).json()
    assert answer["accepted"] == 1
    assert answer["rejected"][0]["index"] == 1
    assert "501 fields" in answer["rejected"][0]["reason"]


def test_it_limits_the_length_of_a_field_name(server: RunningServer) -> None:
    fits = donation(**{"k" * limits.MAX_FIELD_NAME_LENGTH: 1})
    over = donation(**{"k" * (limits.MAX_FIELD_NAME_LENGTH + 1): 1})
    answer = post_native(server, [fits, over]).json()
    assert answer["accepted"] == 1
    assert answer["rejected"][0]["index"] == 1


def nested(depth: int) -> Any:
    """A value that makes an event ``depth`` containers deep (the event itself is the first)."""
    value: Any = "bottom"
    for level in range(depth - 1):
        value = {"d": value} if level % 2 else [value]
    return value


def test_it_limits_the_nesting_depth(server: RunningServer) -> None:
    fits = donation(payload=nested(limits.MAX_DEPTH))
    over = donation(payload=nested(limits.MAX_DEPTH + 1))
    answer = post_native(server, [fits, over]).json()
    assert answer["accepted"] == 1
    assert answer["rejected"][0]["index"] == 1
    assert "deeper than 32" in answer["rejected"][0]["reason"]


def test_it_limits_the_length_of_an_event_id(server: RunningServer) -> None:
    fits = donation(event_id="e" * limits.MAX_EVENT_ID_LENGTH)
    over = donation(event_id="e" * (limits.MAX_EVENT_ID_LENGTH + 1))
    answer = post_native(server, [fits, over]).json()
    assert answer["accepted"] == 1
    assert answer["rejected"][0]["index"] == 1
    assert fits["event_id"] in stored_by_id(server)


# -- Sentry envelopes -------------------------------------------------------------------------------


def _event_payload(size: int) -> bytes:
    event = {"event_id": donation()["event_id"], "message": "", "level": "error"}
    event["message"] = "m" * (size - len(orjson.dumps(event)))
    payload = orjson.dumps(event)
    assert len(payload) == size
    return payload


def test_it_limits_a_sentry_event_item_to_a_mebibyte(server: RunningServer) -> None:
    fits, over = _event_payload(limits.MAX_EVENT_BYTES), _event_payload(limits.MAX_EVENT_BYTES + 1)
    answer = post_envelope(server, envelope(({"type": "event"}, fits), ({"type": "event"}, over)))
    assert answer.status_code == 200
    assert [r["index"] for r in answer.json()["rejected"]] == [1]
    assert orjson.loads(fits)["event_id"] in stored_by_id(server)


def _check_in(size: int) -> bytes:
    check_in = {"check_in_id": "a" * 32, "monitor_slug": "nightly", "status": "ok", "pad": ""}
    check_in["pad"] = "p" * (size - len(orjson.dumps(check_in)))
    return orjson.dumps(check_in)


def test_it_limits_a_check_in_item_to_100_kib(server: RunningServer) -> None:
    items = [
        ({"type": "check_in"}, _check_in(limits.MAX_CHECK_IN_BYTES)),
        ({"type": "check_in"}, _check_in(limits.MAX_CHECK_IN_BYTES + 1)),
    ]
    answer = post_envelope(server, envelope(*items))
    assert answer.status_code == 200
    assert [r["index"] for r in answer.json()["rejected"]] == [1]


def test_it_limits_a_log_container(server: RunningServer) -> None:
    def container(size: int) -> bytes:
        body: dict[str, Any] = {
            "version": 2,
            "items": [{"timestamp": 1761962400.0, "level": "info", "body": ""}],
        }
        body["items"][0]["body"] = "b" * (size - len(orjson.dumps(body)))
        return orjson.dumps(body)

    items = [
        ({"type": "log"}, container(limits.MAX_LOG_CONTAINER_BYTES)),
        ({"type": "log"}, container(limits.MAX_LOG_CONTAINER_BYTES + 1)),
    ]
    answer = post_envelope(server, gzip.compress(envelope(*items), 1), {"Content-Encoding": "gzip"})
    assert answer.status_code == 200
    assert [r["index"] for r in answer.json()["rejected"]] == [1]


@pytest.mark.slow
def test_it_limits_the_log_records_of_one_envelope(server: RunningServer) -> None:
    logs = [{"timestamp": 1761962400.0, "level": "info", "body": f"line {i}"} for i in range(1000)]
    container = orjson.dumps({"version": 2, "items": logs})
    fits = envelope(*[({"type": "log"}, container)] * (limits.MAX_EVENTS_PER_BATCH // 1000))
    assert post_envelope(server, fits).status_code == 200
    one_more = orjson.dumps({"version": 2, "items": logs[:1]})
    over = envelope(*[({"type": "log"}, container)] * 10, ({"type": "log"}, one_more))
    answer = post_envelope(server, over)
    assert answer.status_code == 200  # the first ten containers are kept
    assert [r["index"] for r in answer.json()["rejected"]] == [10]


def test_it_limits_the_items_of_an_envelope(server: RunningServer) -> None:
    item = ({"type": "client_report"}, b"{}")
    assert post_envelope(server, envelope(*[item] * limits.MAX_ENVELOPE_ITEMS)).status_code == 200
    answer = post_envelope(server, envelope(*[item] * (limits.MAX_ENVELOPE_ITEMS + 1)))
    assert answer.status_code == 413


@pytest.mark.slow
def test_it_takes_an_envelope_that_inflates_to_exactly_the_sentry_limit(server: RunningServer) -> None:
    head = orjson.dumps({}) + b"\n"
    event = _event_payload(1000)
    event_part = orjson.dumps({"type": "event"}) + b"\n" + event + b"\n"
    attachment_header = b'{"type":"attachment","length":%d}\n'
    room = limits.MAX_DECOMPRESSED_BYTES - len(head) - len(event_part) - len(attachment_header % 0)
    size = room - (len(str(room)) - 1)
    body = head + event_part + attachment_header % size + b"\0" * size
    assert len(body) == limits.MAX_DECOMPRESSED_BYTES
    answer = post_envelope(server, gzip.compress(body, 1), {"Content-Encoding": "gzip"})
    assert answer.status_code == 200, answer.text
    over = post_envelope(server, gzip.compress(body + b"\n", 1), {"Content-Encoding": "gzip"})
    assert over.status_code == 413


# -- pings ------------------------------------------------------------------------------------------


def test_it_keeps_at_most_16_kib_of_a_ping_body_and_says_it_cut_it(server: RunningServer) -> None:
    create_monitor(server, "limits-fit")
    create_monitor(server, "limits-over")
    fits = http().post(
        f"{server.url}/ping/{server.key}/limits-fit", content=b"a" * limits.MAX_PING_BODY_BYTES
    )
    over = http().post(
        f"{server.url}/ping/{server.key}/limits-over", content=b"b" * (limits.MAX_PING_BODY_BYTES + 1)
    )
    assert fits.status_code == over.status_code == 200
    # The first ping also stores the monitor's state change under the same slug: keep the check-ins.
    checkins = [r for r in stored_by_id(server).values() if r.get("kind") == "check_in"]
    records = {r.get("monitor_slug"): r for r in checkins}
    assert len(records["limits-fit"]["output"]) == limits.MAX_PING_BODY_BYTES
    assert "output_truncated" not in records["limits-fit"]
    assert records["limits-over"]["output_truncated"] is True


def test_it_limits_the_length_of_a_slug(server: RunningServer) -> None:
    create_monitor(server, "s" * limits.MAX_SLUG_LENGTH)
    fits = http().get(f"{server.url}/ping/{server.key}/{'s' * limits.MAX_SLUG_LENGTH}")
    over = http().get(f"{server.url}/ping/{server.key}/{'s' * (limits.MAX_SLUG_LENGTH + 1)}")
    assert fits.status_code == 200
    assert over.status_code == 400
