"""``opswatch serve`` from the command line: a data dir it cannot use is named with the fix in one line,
and uvicorn's own log lines carry no ANSI ``color_message`` in JSON."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from opswatch.cli import main

pytestmark = pytest.mark.slow


def serve(
    *argv: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPSWATCH_")} | (env or {})
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "opswatch", "serve", "--port", "0", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
    )  # fmt: skip


def refusal(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, out + err
    [line] = err.strip().splitlines()
    return line


def test_it_names_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    line = refusal(serve("--data-dir", str(tmp_path / "data")))
    assert line == (
        f"opswatch: data dir {tmp_path / 'data'} (--data-dir) is a file, not a directory: "
        "pass --data-dir (or set OPSWATCH_DATA_DIR to) a directory you can write"
    )


def test_it_says_where_the_data_dir_came_from(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    line = refusal(serve(env={"OPSWATCH_DATA_DIR": str(tmp_path / "data")}))
    assert f"data dir {tmp_path / 'data'} (OPSWATCH_DATA_DIR) is a file" in line


def test_the_demo_names_a_data_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").write_text("")
    assert main(["demo", "--data-dir", str(tmp_path / "data"), "--duration", "1"]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_it_names_a_read_only_data_dir_and_the_fix(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        target = tmp_path / "locked"
        target.mkdir(mode=0o555)
        line = refusal(serve("--data-dir", str(target / "data")))
        assert "Permission denied" in line
    else:  # root writes through modes: mount a read-only file system in a user namespace instead
        if shutil.which("unshare") is None or subprocess.run(["unshare", "-Urm", "true"]).returncode != 0:
            if os.environ.get("CI") == "true":
                pytest.fail("unshare -Urm is needed to make a read-only file system as root")
            pytest.skip("unshare -Urm is not available to make a read-only file system as root")
        target = tmp_path / "ro"
        target.mkdir()
        script = f'mount -t tmpfs -o ro none {target} && exec "$@"'
        line = refusal(
            serve("--data-dir", str(target / "data"), prefix=("unshare", "-Urm", "sh", "-c", script, "sh"))
        )
        assert "Read-only file system" in line
    assert line.startswith(f"opswatch: data dir {target / 'data'} (--data-dir) cannot be written (")
    assert line.endswith("pass --data-dir (or set OPSWATCH_DATA_DIR to) a directory you can write")
    assert "admin_token" not in line


def test_uvicorn_lines_in_json_carry_no_color_message(tmp_path: Path) -> None:
    process = serve("--data-dir", str(tmp_path / "data"), env={"OPSWATCH_LOG_FORMAT": "json"})
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "Application startup complete" in line:
            break
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    records = [orjson.loads(line) for line in [*lines, *out.splitlines()] if line.startswith("{")]
    uvicorn = [record for record in records if str(record.get("logger", "")).startswith("uvicorn")]
    assert any("Finished server process" in record["message"] for record in uvicorn)
    assert [record for record in uvicorn if "color_message" in record] == []
    assert not any("\x1b" in str(record) for record in records)
