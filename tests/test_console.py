"""The console sink: pretty for people, JSON lines for machines, and a broken stream never raises."""

from __future__ import annotations

import contextlib
import io
import os
import re
from typing import Any

import orjson
import pytest

import opswatch
from opswatch.sinks.console import ConsoleSink


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_it_prints_pretty_lines_with_fields_and_a_readable_traceback() -> None:
    stream = io.StringIO()
    opswatch.init(stream=stream, format="pretty", color=False)
    log = opswatch.get_logger("donations")
    try:
        raise ValueError("amount must be positive")
    except ValueError:
        log.exception("Donation rejected", operation="donations.create", amount=-5)
    text = stream.getvalue()
    first = text.splitlines()[0]
    assert re.match(r"\d\d:\d\d:\d\d\.\d{3} ERROR donations Donation rejected  ", first)
    assert "operation=donations.create" in first and "amount=-5" in first
    assert "Traceback (most recent call last):" in text
    assert "ValueError: amount must be positive" in text
    assert "\x1b[" not in text


def test_it_colours_pretty_output_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = TtyStream()
    opswatch.init(stream=stream)
    opswatch.get_logger("x").warn("careful")
    opswatch.flush()
    assert "\x1b[33m" in stream.getvalue()
    assert not stream.getvalue().startswith("{")


def test_it_turns_colour_off_for_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    stream = TtyStream()
    opswatch.init(stream=stream)
    opswatch.get_logger("x").warn("careful")
    opswatch.flush()
    assert "\x1b[" not in stream.getvalue()


@pytest.mark.parametrize(
    ("tty", "environment", "expected"),
    [(True, "development", "pretty"), (True, "production", "json"), (False, "development", "json")],
)
def test_it_picks_pretty_on_a_terminal_outside_production(tty: bool, environment: str, expected: str) -> None:
    stream = TtyStream() if tty else io.StringIO()
    opswatch.init(stream=stream, environment=environment)
    opswatch.get_logger("x").info("hello")
    opswatch.flush()
    is_json = stream.getvalue().startswith("{")
    assert is_json == (expected == "json")


def test_it_takes_format_and_level_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSWATCH_LOG_FORMAT", "json")
    monkeypatch.setenv("OPSWATCH_LOG_LEVEL", "warning")
    stream = TtyStream()
    opswatch.init(stream=stream)
    log = opswatch.get_logger("x")
    log.info("hidden")
    log.error("shown")
    lines = stream.getvalue().splitlines()
    assert [orjson.loads(line)["message"] for line in lines] == ["shown"]


def test_it_writes_bytes_to_binary_streams(tmp_path: Any) -> None:
    path = tmp_path / "app.log"
    with open(path, "wb") as stream:
        opswatch.init(stream=stream, format="json")
        opswatch.get_logger("x").info("to a binary file")
        opswatch.shutdown()
    assert orjson.loads(path.read_bytes())["message"] == "to a binary file"


def test_it_flushes_errors_at_once_and_buffers_the_rest_until_flush(tmp_path: Any) -> None:
    path = tmp_path / "app.log"
    with open(path, "w", buffering=1 << 20) as stream:
        opswatch.init(stream=stream, format="json")
        log = opswatch.get_logger("x")
        log.error("urgent")
        assert b"urgent" in path.read_bytes()
        log.info("can wait")
        opswatch.flush()
        assert b"can wait" in path.read_bytes()


def test_it_never_raises_on_a_closed_stream_and_reports_it_once(capsys: Any) -> None:
    stream = io.StringIO()
    opswatch.init(stream=stream, format="json")
    stream.close()
    log = opswatch.get_logger("x")
    for _ in range(3):
        log.error("into the void")
    err = capsys.readouterr().err
    assert err.count("opswatch: the console sink failed") == 1


def test_it_never_raises_on_a_broken_pipe() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    stream = os.fdopen(write_fd, "w")
    opswatch.init(stream=stream, format="json")
    opswatch.get_logger("x").error("nobody listens")
    sink = next(s for s in opswatch._runtime.STATE.get().sinks if isinstance(s, ConsoleSink))
    assert sink.failures >= 1
    opswatch.shutdown()
    with contextlib.suppress(BrokenPipeError):
        stream.close()


def test_it_writes_unserializable_values_into_json_lines_with_a_marker(json_console: Any) -> None:
    stream = json_console(redact=False)

    class Thing:
        def __repr__(self) -> str:
            return "<Thing>"

    loop: dict[str, Any] = {}
    loop["me"] = loop
    opswatch.get_logger("x").info("odd values", thing=Thing(), raw=b"abc", loop=loop, tags={1})
    (record,) = stream.records()
    assert record["thing"] == "<unserializable Thing: <Thing>>"
    assert record["raw"] == "abc"
    assert record["loop"] == {"me": "[circular]"}
    assert record["tags"] == [1]


@pytest.mark.slow
def test_it_writes_buffered_lines_at_exit() -> None:
    import subprocess
    import sys

    code = (
        "import opswatch\n"
        "opswatch.init(format='json')\n"
        "log = opswatch.get_logger('nightly')\n"
        "for i in range(3):\n"
        "    log.info('step', i=i)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    steps = [orjson.loads(line)["i"] for line in result.stdout.splitlines()]
    assert steps == [0, 1, 2]
