"""Stack frames as the SDK captures them: which are the app's, where their files are, and their source.

The cast: the donations app's ``charge`` (this file, under the working directory: the project), which
calls the standard library (``json``) and opswatch's own ``track_performance`` on the way.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

import opswatch
from opswatch import _limits
from opswatch.record import serialize_exception


class CardDeclinedError(Exception):
    pass


def charge() -> None:
    card = "declined"  # the line before the raise
    raise CardDeclinedError(f"card {card}")


def caught(function: Any, *args: Any) -> dict[str, Any]:
    try:
        function(*args)
    except Exception as err:
        return serialize_exception(err)
    raise AssertionError("expected an exception")


def test_it_marks_opswatch_and_the_standard_library_as_not_the_apps() -> None:
    def through_libraries() -> None:
        json.loads("{}", object_hook=lambda _: opswatch.track_performance("charge", charge))

    stack = caught(through_libraries)["stack"]
    by_file = {frame["file"]: frame["in_app"] for frame in stack}
    assert by_file["tests/test_record_frames.py"] is True
    assert by_file["json/__init__.py"] is False and by_file["json/decoder.py"] is False
    assert by_file["opswatch/perf/_track.py"] is False


def test_it_shows_the_apps_files_relative_to_the_project_root() -> None:
    stack = caught(charge)["stack"]
    assert Path.cwd() / stack[-1]["file"] == Path(__file__)
    assert not stack[-1]["file"].startswith("/")


def test_it_captures_the_source_around_the_line_that_raised() -> None:
    frame = caught(charge)["stack"][-1]
    assert frame["context_line"] == '    raise CardDeclinedError(f"card {card}")'
    assert frame["pre_context"][-1] == '    card = "declined"  # the line before the raise'
    assert len(frame["pre_context"]) == _limits.CONTEXT_LINES
    assert len(frame["post_context"]) == _limits.CONTEXT_LINES


def test_it_captures_no_source_for_library_frames() -> None:
    stack = caught(json.loads, "{")["stack"]
    assert all("context_line" not in frame for frame in stack if not frame["in_app"])


def load(tmp_path: Path, name: str, source: str) -> Any:
    """A module of the app, written to a file under the working directory and imported."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    namespace: dict[str, Any] = {"__name__": name}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


def test_it_cuts_source_lines_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    at = "x" * (_limits.CONTEXT_LINE_CHARS - len('    at = ""'))
    past = "y" * (_limits.CONTEXT_LINE_CHARS - len('    past = ""') + 1)
    module = load(tmp_path, "longlines", f"""
        def fail():
            at = "{at}"
            past = "{past}"
            raise ValueError("long")
        """)
    frame = caught(module["fail"])["stack"][-1]
    assert frame["file"] == "longlines.py"
    assert frame["pre_context"][-2] == f'    at = "{at}"'  # exactly the limit: kept whole
    assert frame["pre_context"][-1] == f'    past = "{past}'[: _limits.CONTEXT_LINE_CHARS] + _limits.TRUNCATION_MARKER


def test_it_gives_source_to_the_innermost_app_frames_up_to_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    depth = _limits.CONTEXT_FRAMES + 3
    module = load(tmp_path, "deep", """
        def down(n):
            if n == 0:
                raise RecursionError("bottom")
            down(n - 1)
        """)
    stack = caught(module["down"], depth)["stack"]
    app = [frame for frame in stack if frame["in_app"]]
    with_source = [frame for frame in app if "context_line" in frame]
    assert len(with_source) == _limits.CONTEXT_FRAMES
    assert with_source == app[-_limits.CONTEXT_FRAMES :]


def test_it_leaves_out_source_it_cannot_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = load(tmp_path, "gone", """
        def fail():
            raise ValueError("the file went away")
        """)
    os.remove(tmp_path / "gone.py")
    frame = caught(module["fail"])["stack"][-1]
    assert frame["function"] == "fail" and "context_line" not in frame


def test_it_counts_the_demos_simulated_app_as_an_application() -> None:
    from opswatch.cli._church_app import ChurchApp

    app = ChurchApp(seed=1)
    stack = caught(lambda: opswatch.track_query("donations.findMany", lambda: app._report_query(True)))["stack"]
    demo = [frame for frame in stack if frame["module"] == "opswatch.cli._church_app"]
    assert demo and all(frame["in_app"] for frame in demo)
    assert demo[-1]["file"].endswith("opswatch/cli/_church_app.py") and not demo[-1]["file"].startswith("/")
    assert "raise DatabaseTimeoutError" in demo[-1]["context_line"]
    assert all(not frame["in_app"] for frame in stack if frame["module"].startswith("opswatch.perf"))


def test_it_censors_source_literals_under_the_apps_own_secret_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, json_console: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    console = json_console(service="donations", redact_keys=["kiosk_code"])
    module = load(tmp_path, "kiosk", """
        def unlock():
            kiosk_code = "4455"
            settings = {"kiosk_code": "4455", "campus": "north"}
            raise PermissionError("kiosk locked")
        """)
    try:
        module["unlock"]()
    except PermissionError as err:
        opswatch.get_logger("kiosk").error("unlock failed", err)
    opswatch.flush()
    frame = console.records()[-1]["error"]["stack"][-1]
    source = "\n".join([*frame["pre_context"], frame["context_line"]])
    assert "4455" not in source
    assert 'kiosk_code = "[REDACTED]"' in source and '"campus": "north"' in source
