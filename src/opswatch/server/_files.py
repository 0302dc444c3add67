"""Files only the server's own user may read: the data directory 0700, the stores and keys 0600.

``state.db`` holds the ingest keys and the event store holds everything the apps logged; another local
user must not read either. Each file is made private when it is created (before anything is written to
it where the engine allows that), not by changing the process umask, which would reach every thread of
an application that embeds the server.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600


def private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) if missing; a directory this call creates is 0700.

    An existing directory keeps its mode: its owner chose it."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)  # mkdir's mode is cut by the umask; make it exact


def private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist (SQLite takes an empty file as a new database,
    and gives its journal files the database file's mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def make_private(path: Path) -> None:
    """chmod 0600 a file an engine created itself (DuckDB refuses to open an empty file); no error if it
    is gone already (a WAL removed by a checkpoint)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, FILE_MODE)
