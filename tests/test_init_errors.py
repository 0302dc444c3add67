"""A bad setting at ``opswatch.init()``: one exception whose one-line message names the setting, with a
suggestion for a misspelt name, and a traceback that does not walk through opswatch's own parsing."""

from __future__ import annotations

import subprocess
import sys
import traceback

import pytest

import opswatch


def test_it_suggests_the_setting_a_misspelt_name_meant() -> None:
    with pytest.raises(opswatch.ConfigError) as raised:
        opswatch.init(servce="checkout")
    assert str(raised.value) == "opswatch setting servce: unknown setting; did you mean service?"
    assert raised.value.setting == "servce"


def test_it_lists_the_settings_when_nothing_is_close() -> None:
    with pytest.raises(opswatch.ConfigError, match=r"unknown setting \(known: .*\bservice\b"):
        opswatch.init(zzzz=1)


def test_it_raises_one_exception_from_init_itself() -> None:
    with pytest.raises(opswatch.ConfigError) as raised:
        opswatch.init(dsn="nope")
    error = raised.value
    assert error.__cause__ is None and error.__suppress_context__
    frames = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
    assert frames[-1] == "init"  # not Settings.load, _convert, Dsn.parse
    assert error.setting == "dsn" and len(str(error).splitlines()) == 1


def test_a_program_with_a_bad_setting_prints_a_short_traceback_ending_in_the_setting() -> None:
    program = "import opswatch\nopswatch.init(servce='checkout')\n"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert (
        lines[-1]
        == "opswatch.config.ConfigError: opswatch setting servce: unknown setting; did you mean service?"
    )
    assert len(lines) <= 5 and not any("config.py" in line for line in lines)
