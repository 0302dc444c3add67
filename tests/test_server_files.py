"""The data directory is 0700 and the files holding keys and events 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest_helpers import donation, post_native
from opswatch.server.testing import running_server


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask of a shell (022): files readable by everyone unless the server says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_it_keeps_a_new_data_dir_and_its_stores_to_its_own_user(tmp_path: Path, open_umask: None) -> None:
    data_dir = tmp_path / "fresh" / "data"
    with running_server(tmp_path, data_dir=data_dir) as server:
        assert post_native(server, [donation()]).status_code == 200
        assert mode(data_dir) == 0o700
        files = {path.name: mode(path) for path in data_dir.iterdir() if path.is_file()}
        assert {"state.db", "events.duckdb", "admin_token"} <= set(files)
        if (data_dir / "events.duckdb.wal").exists():
            assert files["events.duckdb.wal"] == 0o600
        assert {name: m for name, m in files.items() if m != 0o600} == {}


def test_it_leaves_the_mode_of_an_existing_data_dir_alone(tmp_path: Path, open_umask: None) -> None:
    data_dir = tmp_path / "shared"
    data_dir.mkdir(mode=0o750)
    with running_server(tmp_path, data_dir=data_dir):
        assert mode(data_dir) == 0o750
        assert mode(data_dir / "state.db") == 0o600
