"""Sentry payloads to records (``opswatch.server.ingest.sentry_mapping``): the odd shapes senders use."""

from __future__ import annotations

import pytest

from opswatch.server.ingest.records import Refused
from opswatch.server.ingest.sentry_mapping import (
    exception_chain,
    frames,
    map_check_in,
    map_event,
    map_logs,
    message_text,
    tags_map,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        ({"formatted": "Order 7 failed", "message": "Order %s failed", "params": [7]}, "Order 7 failed"),
        ({"message": "Order %s failed", "params": [7]}, "Order 7 failed"),
        ({"message": "Order {} failed", "params": [7]}, "Order 7 failed"),
        ({"message": "Order %(id)s failed", "params": {"id": 7}}, "Order 7 failed"),
        ({"message": "Order %s %s failed", "params": [7]}, "Order %s %s failed"),
        (None, ""),
        (42, ""),
    ],
)
def test_it_reads_every_message_shape(value: object, text: str) -> None:
    assert message_text(value) == text


def test_it_reads_tags_as_a_map_or_as_pairs() -> None:
    assert tags_map({"a": "1", "b": 2}) == {"a": "1", "b": "2"}
    assert tags_map([["a", "1"], ["b", None], ["bad"], "junk"]) == {"a": "1", "b": ""}
    assert tags_map("nonsense") == {}


def test_it_reads_an_exception_list_oldest_first_with_the_raised_one_on_top() -> None:
    chain = exception_chain(
        [
            {"type": "KeyError", "value": "'card'", "module": "builtins"},
            {
                "type": "CardDeclined",
                "value": "declined",
                "module": "payments.errors",
                "mechanism": {"type": "generic", "handled": True},
            },
        ]
    )
    assert chain is not None
    assert chain["type"] == "payments.errors.CardDeclined"
    assert chain["handled"] is True
    assert chain["cause"]["type"] == "KeyError"
    assert "cause" not in chain["cause"]
    assert exception_chain({"values": "nope"}) is None


def test_it_keeps_the_first_and_last_fifty_frames_and_guesses_in_app() -> None:
    raw = [{"filename": f"/app/f{i}.py", "lineno": i, "function": f"f{i}"} for i in range(150)]
    raw.append({"abs_path": "/venv/lib/python3.11/site-packages/lib.py", "lineno": 1})
    kept = frames(raw)
    assert len(kept) == 100
    assert kept[0]["function"] == "f0" and kept[49]["function"] == "f49"
    assert kept[-1]["file"].endswith("site-packages/lib.py") and kept[-1]["in_app"] is False
    assert kept[0]["in_app"] is True


def test_it_maps_an_event_without_exception_or_level_to_an_info_log() -> None:
    (record,) = map_event({"message": {"formatted": "hello"}, "timestamp": "2025-11-01T02:00:00Z"}, b"{}")
    assert record["kind"] == "log" and record["level"] == "info" and record["message"] == "hello"
    assert len(record["event_id"]) == 32


def test_it_normalizes_a_uuid_event_id() -> None:
    (record,) = map_event({"event_id": "5F3C1C1E-8F4A-4F53-9A52-1F0E0F1D2C3B"}, b"{}")
    assert record["event_id"] == "5f3c1c1e8f4a4f539a521f0e0f1d2c3b"


def test_it_reads_a_single_log_and_maps_severity_numbers() -> None:
    (record,) = map_logs({"body": "alone", "severity_number": 17, "attributes": {"k": "v"}}, b"x")
    assert record["level"] == "error"
    assert record["k"] == "v"
    with pytest.raises(Refused):
        map_logs({"items": [1]}, b"x")


def test_it_refuses_a_check_in_without_slug_or_with_an_unknown_status() -> None:
    with pytest.raises(Refused, match="monitor_slug"):
        map_check_in({"status": "ok"}, b"x")
    with pytest.raises(Refused, match="status"):
        map_check_in({"monitor_slug": "x", "status": "done"}, b"x")
    (same,) = map_check_in({"monitor_slug": "x", "status": "ok"}, b"payload")
    (again,) = map_check_in({"monitor_slug": "x", "status": "ok"}, b"payload")
    assert same["event_id"] == again["event_id"]
