"""Fresh state stores for tests that run on every engine: ``state_url(kind, tmp_path)`` yields a SQLite
file's URL, or (when ``TEST_POSTGRES_URL`` is set) the URL of a PostgreSQL schema of its own, dropped
afterwards. A test module makes its fixture from it::

    @pytest.fixture(params=ENGINES)
    def database_url(request, tmp_path):
        yield from state_url(request.param, tmp_path)

Under ``CI=true`` a missing ``TEST_POSTGRES_URL`` fails the PostgreSQL run instead of skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from opswatch.server.state.base import create_engine_for

#: e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/opswatch_test`` (``.ci/run`` sets it).
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")


ENGINES = ("sqlite", "postgresql")


def state_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty state store's URL (a generator: the PostgreSQL schema is dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    if not POSTGRES_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("TEST_POSTGRES_URL is not set under CI")
        pytest.skip("set TEST_POSTGRES_URL to run on PostgreSQL too")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine_for(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
