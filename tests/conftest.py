"""Shared fixtures. Every test starts with opswatch unconfigured and ends with it shut down."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import opswatch

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
