"""Under ``CI=true`` a test whose service is missing fails the run; elsewhere it is skipped, with the reason.

Runs pytest on a one-test file in a child process, once as CI and once as a developer machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent

NEEDS_A_BROWSER = '''
from conftest import require_service

def test_it_needs_a_browser():
    require_service("Chromium", "not installed (apt-get install chromium)")
'''


def run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_browser.py").write_text(NEEDS_A_BROWSER)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:randomly", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_it_fails_a_test_whose_service_is_missing_under_ci(tmp_path: Path) -> None:
    result = run(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout
    assert "Chromium is not available: not installed (apt-get install chromium)" in result.stdout


def test_it_skips_it_with_the_reason_on_a_developer_machine(tmp_path: Path) -> None:
    result = run(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "SKIPPED" in result.stdout and "Chromium is not available: not installed" in result.stdout
