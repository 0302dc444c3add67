"""Reading pino's line shape on the native endpoint, line by line (the shapes pino's options produce)."""

from __future__ import annotations

from typing import Any

import orjson

from opswatch.server.ingest.native import parse_batch
from opswatch.server.ingest.pino import MAX_FRAME_LINE, MAX_FRAMES, pino_error, v8_frames

RECEIVED = 1_764_700_000.0
RECEIVED_AT = "2025-12-02T18:26:40.000Z"


def parse(*lines: dict[str, Any]) -> list[dict[str, Any]]:
    batch = parse_batch(b"\n".join(orjson.dumps(line) for line in lines), RECEIVED, RECEIVED_AT)
    assert batch.rejected == []
    return batch.records


def test_it_keeps_opswatchs_own_scale_for_numeric_levels_of_native_records() -> None:
    [native] = parse({"timestamp": RECEIVED_AT, "level": 30, "message": "native warn"})
    assert native["level"] == "warn"
    [pino] = parse({"time": 1_764_700_000_000, "level": 30, "msg": "pino info"})
    assert pino["level"] == "info"


def test_it_puts_custom_pino_levels_with_the_level_below() -> None:
    records = parse({"level": 35, "msg": "notice", "time": 1}, {"level": 5, "msg": "verbose", "time": 1})
    assert [r["level"] for r in records] == ["info", "trace"]


def test_it_reads_pinos_other_time_formats_and_label_levels() -> None:
    unix, iso, labelled = parse(
        {"level": 30, "time": 1_764_700_000, "msg": "unixTime"},
        {"level": 30, "time": "2025-12-02T18:26:40.123Z", "msg": "isoTime"},
        {"level": "warn", "time": 1_764_700_000_500, "msg": "formatters.level"},
    )
    assert unix["timestamp"] == "2025-12-02T18:26:40.000Z"
    assert iso["timestamp"] == "2025-12-02T18:26:40.123Z"
    assert (labelled["level"], labelled["timestamp"]) == ("warn", "2025-12-02T18:26:40.500Z")


def test_it_refuses_a_pino_time_it_cannot_read_naming_the_field() -> None:
    batch = parse_batch(orjson.dumps({"level": 30, "time": "yesterday", "msg": "x"}), RECEIVED, RECEIVED_AT)
    assert batch.records == [] and "timestamp" in batch.rejected[0].reason


def test_it_gives_the_same_line_the_same_id_and_a_repeated_line_another() -> None:
    line = {"level": 30, "time": 1_764_700_000_000, "msg": "tick"}
    first, again = parse(line, line)
    assert first["event_id"] != again["event_id"]
    assert [r["event_id"] for r in parse(line, line)] == [first["event_id"], again["event_id"]]


def test_it_reads_each_kind_of_v8_frame() -> None:
    frames = v8_frames(
        [
            "    at async handler (file:///srv/app/routes.mjs:12:5)",
            "    at new Ledger (/srv/app/ledger.js:4:11)",
            "    at /srv/app/index.js:40:3",
            "    at eval (eval at compile (/srv/app/tpl.js:8:9), <anonymous>:1:1)",
            "    at Array.map (<anonymous>)",
            "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
            "    at run (/srv/app/node_modules/express/lib/router.js:7:2)",
            "not a frame",
        ]
    )
    assert [(f["file"], f["line"], f["function"], f["in_app"]) for f in frames] == [
        ("/srv/app/node_modules/express/lib/router.js", 7, "run", False),
        ("node:internal/process/task_queues", 95, "process.processTicksAndRejections", False),
        ("<anonymous>", None, "Array.map", False),
        ("/srv/app/tpl.js", 8, "eval", True),
        ("/srv/app/index.js", 40, None, True),
        ("/srv/app/ledger.js", 4, "new Ledger", True),
        ("/srv/app/routes.mjs", 12, "handler", True),
    ]
    assert frames[-1]["column"] == 5


def test_it_keeps_the_first_and_last_frames_of_a_deep_stack() -> None:
    frames = v8_frames([f"    at f{n} (/srv/app/deep.js:{n}:1)" for n in range(1, 301)])
    assert len(frames) == MAX_FRAMES
    assert frames[0]["line"] == 300 and frames[-1]["line"] == 1


def test_it_reads_an_error_without_a_stack_and_leaves_an_unreadable_err_a_field() -> None:
    assert pino_error({"type": "Error", "message": "boom"}) == {"type": "Error", "message": "boom", "stack": []}
    assert pino_error({"stack": 42}) is None
    [record] = parse({"level": 50, "time": 1, "msg": "odd", "err": {"stack": 42}})
    assert record["err"] == {"stack": 42} and "error" not in record
    [bare] = parse({"level": 50, "time": 1, "err": {"type": "RangeError", "message": "bad range", "stack": ""}})
    assert bare["message"] == "bad range" and bare["kind"] == "error"


def test_it_reads_frame_lines_up_to_their_limit_and_skips_longer_ones() -> None:
    def line(length: int) -> str:
        head = "    at f ("
        tail = ":3:1)"
        return head + "/" + "a" * (length - len(head) - len(tail) - 1) + tail

    assert len(line(MAX_FRAME_LINE)) == MAX_FRAME_LINE
    assert [f["line"] for f in v8_frames([line(MAX_FRAME_LINE)])] == [3]
    assert v8_frames([line(MAX_FRAME_LINE + 1)]) == []
    # lines with many " (" are read in one pass: the function ends at the first, the location is the rest
    [odd] = v8_frames(["    at f" + " (" * 900 + ")"])
    assert odd["function"] == "f" and odd["line"] is None
