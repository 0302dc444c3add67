"""Shared fixtures. Every test starts with opswatch unconfigured and ends with it shut down.

Services a test needs (Chromium, PostgreSQL, node) go through ``require_service``: on a developer
machine a missing one skips the test with the reason (``-ra`` prints it); under ``CI=true`` it fails it,
so a CI run where a service could not start can never pass by skipping. State-store tests take
``state_url``: they run once on SQLite and once on PostgreSQL (``TEST_POSTGRES_URL``).
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import orjson
import pytest
from hypothesis import settings as hypothesis_settings

import opswatch

# Property tests: no per-example deadline (Hypothesis' 200 ms fails a test as flaky on a loaded machine
# when one example waits for the CPU), and under CI the examples are derived from each test, the same on
# every run: a CI run passes or fails on the code, never on a draw. Developer runs keep exploring anew.
hypothesis_settings.register_profile("opswatch", deadline=None)
hypothesis_settings.register_profile("opswatch-ci", deadline=None, derandomize=True)
hypothesis_settings.load_profile(
    "opswatch-ci" if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes") else "opswatch"
)

# Tests talk to servers on 127.0.0.1; a proxy in the environment must never swallow that traffic.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


@pytest.fixture(autouse=True)
def _fresh_opswatch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Isolate each test from the environment's opswatch/Sentry/Slack settings and from other tests."""
    for name in list(os.environ):
        if name.startswith(("OPSWATCH_", "SENTRY_", "SLACK_")) or name in ("CRON_SECRET", "ENVIRONMENT"):
            monkeypatch.delenv(name, raising=False)
    # A test that ships to a server without naming a spool keeps it in its own folder, not in /tmp.
    monkeypatch.setenv("OPSWATCH_SPOOL_DIR", str(tmp_path / "opswatch-spool"))
    opswatch.shutdown(timeout=1.0)
    opswatch.clear_context()
    yield
    opswatch.shutdown(timeout=1.0)
    opswatch.clear_context()
    _forget_sentry_client()


def _forget_sentry_client() -> None:
    """A test that started sentry-sdk must not leave its (maybe closed) client to the next test."""
    try:
        import sentry_sdk
    except ImportError:
        return
    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=1.0)
    sentry_sdk.get_global_scope().set_client(None)


class JsonStream(io.StringIO):
    """A text stream that parses what the console sink wrote as JSON lines (after a flush)."""

    def records(self) -> list[dict[str, Any]]:
        opswatch.flush()
        return [orjson.loads(line) for line in self.getvalue().splitlines() if line.strip()]


@pytest.fixture
def json_console() -> Callable[..., JsonStream]:
    """``json_console(**settings)`` inits opswatch with JSON console output into a stream it returns."""

    def start(**settings: Any) -> JsonStream:
        stream = JsonStream()
        settings.setdefault("level", "trace")
        opswatch.init(stream=stream, format="json", **settings)
        return stream

    return start


# -- services --------------------------------------------------------------------------------------------


def in_ci() -> bool:
    """True when running under CI (``CI=true``, as GitHub Actions and ``.ci/run`` set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_service(name: str, reason: str) -> NoReturn:
    """Stop a test that cannot run because ``name`` is missing: fail under ``CI=true``, skip elsewhere.

    ``reason`` says what is missing and how to get it (``apt-get install chromium``)."""
    message = f"{name} is not available: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing service fails the run instead of skipping)", pytrace=False)
    pytest.skip(message)


#: A PostgreSQL server for the state-store tests, e.g.
#: ``TEST_POSTGRES_URL=postgresql+psycopg://postgres:secret@127.0.0.1:5432/opswatch_test``.
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty state store: a SQLite file, or a schema of its own on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    if not POSTGRES_URL:
        require_service("PostgreSQL", "set TEST_POSTGRES_URL to run the state tests on PostgreSQL too")
    from sqlalchemy import text

    from opswatch.server.state.base import create_engine_for

    schema = f"state_{uuid.uuid4().hex[:12]}"
    admin = create_engine_for(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as err:
        admin.dispose()
        require_service("PostgreSQL", f"cannot reach TEST_POSTGRES_URL: {type(err).__name__}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def pytest_report_header() -> list[str]:
    """Say at the top of every run what it cannot cover here, instead of a wall of skips."""
    if os.environ.get("TEST_CLICKHOUSE_URL"):
        return ["event store engines: duckdb, clickhouse (chdb), clickhouse-http (TEST_CLICKHOUSE_URL)"]
    return [
        "event store engines: duckdb, clickhouse (chdb in process); clickhouse-http NOT run: "
        "TEST_CLICKHOUSE_URL is not set (no ClickHouse server on this machine or in its CI)"
    ]
