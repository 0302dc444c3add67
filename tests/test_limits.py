"""Every SDK limit at its edge: strings, records, depth and container sizes are cut with a marker."""

from __future__ import annotations

from typing import Any

import orjson

import opswatch
from opswatch import _limits
from opswatch.record import to_json
from opswatch.redact import Redactor


def test_it_keeps_a_string_at_the_limit_and_cuts_one_past_it() -> None:
    redactor = Redactor()
    at = "a" * _limits.MAX_STRING_LENGTH
    assert redactor.redact(at) == at
    cut = redactor.redact(at + "b")
    assert cut == at + _limits.TRUNCATION_MARKER


def test_it_keeps_depth_at_the_limit_and_marks_past_it() -> None:
    def nest(levels: int) -> Any:
        value: Any = "leaf"
        for _ in range(levels):
            value = {"n": value}
        return value

    assert "[depth limit]" not in repr(Redactor().redact(nest(_limits.MAX_DEPTH)))
    assert "[depth limit]" in repr(Redactor().redact(nest(_limits.MAX_DEPTH + 1)))


def test_it_keeps_the_first_items_of_containers_and_counts_the_rest() -> None:
    size = _limits.MAX_CONTAINER_ITEMS
    assert len(Redactor().redact(list(range(size)))) == size
    longer = Redactor().redact(list(range(size + 5)))
    assert longer[-1] == "[5 more items]"
    mapping = Redactor().redact({str(i): i for i in range(size + 2)})
    assert mapping["…"] == "[2 more keys]"


def test_it_cuts_an_oversized_record_to_the_limit_and_says_so() -> None:
    record = {"timestamp": "t", "level": "info", "message": "m", "blob": "x" * 10_000, "other": ["y" * 100] * 4000}
    data = to_json(record)
    assert len(data) <= _limits.MAX_RECORD_BYTES
    parsed = orjson.loads(data)
    assert parsed["_truncated"] is True
    assert parsed["message"] == "m"


def test_it_leaves_a_record_under_the_limit_untouched() -> None:
    record = {"message": "m", "blob": "x" * 1000}
    assert orjson.loads(to_json(record)) == record


def test_it_bounds_huge_fields_through_the_logger(json_console: Any) -> None:
    stream = json_console()
    opswatch.get_logger("x").info("big", payload=["z" * 16_000] * 40)
    opswatch.flush()
    line = stream.getvalue().splitlines()[0]
    assert len(line.encode()) <= _limits.MAX_RECORD_BYTES
    assert orjson.loads(line)["_truncated"] is True
