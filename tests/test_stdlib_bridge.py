"""The stdlib bridge: ``logging`` records flow through the opswatch pipeline, printed once."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import opswatch


@pytest.fixture
def root_handlers() -> Any:
    """Put back the root logger's handlers and level whatever a test does."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.fixture
def set_level() -> Iterator[Callable[[str, int], logging.Logger]]:
    """``set_level(name, level)`` sets a named logger's level; the logger's level and propagation are put
    back afterwards (a ``sqlalchemy.engine`` left at INFO would log every SQL statement of later tests)."""
    saved: list[tuple[logging.Logger, int, bool]] = []

    def set_level(name: str, level: int) -> logging.Logger:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.setLevel(level)
        return logger

    yield set_level
    for logger, level, propagate in reversed(saved):
        logger.setLevel(level)
        logger.propagate = propagate


def test_it_routes_stdlib_records_with_extra_fields_and_exc_info(
    json_console: Any, root_handlers: Any, set_level: Any
) -> None:
    stream = json_console()
    log = set_level("sqlalchemy.engine", logging.INFO)
    log.info("SELECT %s rows", 3, extra={"operation": "db.donations.select", "duration_ms": 4.2})
    try:
        raise TimeoutError("pool exhausted")
    except TimeoutError:
        log.error("query failed", exc_info=True)
    first, second = [r for r in stream.records() if r["logger"] == "sqlalchemy.engine"]
    assert first["message"] == "SELECT 3 rows"
    assert (first["operation"], first["duration_ms"], first["level"]) == ("db.donations.select", 4.2, "info")
    assert second["level"] == "error"
    assert second["error"]["type"] == "TimeoutError"


def test_it_maps_stdlib_levels(json_console: Any, root_handlers: Any, set_level: Any) -> None:
    stream = json_console()
    log = set_level("levels", logging.DEBUG)
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        log.log(level, "m")
    assert [r["level"] for r in stream.records() if r["logger"] == "levels"] == [
        "debug", "info", "warn", "error", "fatal"
    ]


def test_it_prints_each_line_once_replacing_the_roots_stream_handlers(root_handlers: Any) -> None:
    plain = io.StringIO()
    root_handlers.addHandler(logging.StreamHandler(plain))
    stream = io.StringIO()
    opswatch.init(stream=stream, format="json")
    logging.getLogger("app.module").warning("only once")
    opswatch.flush()
    assert stream.getvalue().count("only once") == 1
    assert plain.getvalue() == ""
    opswatch.shutdown()
    logging.getLogger("app.module").warning("after shutdown")
    assert "after shutdown" in plain.getvalue()


def test_it_takes_over_uvicorns_non_propagating_loggers(root_handlers: Any, set_level: Any) -> None:
    uvicorn = set_level("uvicorn.error", logging.INFO)
    own = io.StringIO()
    handler = logging.StreamHandler(own)
    uvicorn.addHandler(handler)
    uvicorn.propagate = False
    try:
        stream = io.StringIO()
        opswatch.init(stream=stream, format="json")
        uvicorn.info("Started server process")
        opswatch.flush()
        assert stream.getvalue().count("Started server process") == 1
        assert own.getvalue() == ""
    finally:
        opswatch.shutdown()
        uvicorn.removeHandler(handler)


def test_it_redacts_stdlib_records(json_console: Any, root_handlers: Any) -> None:
    stream = json_console()
    logging.getLogger("httpx").warning("GET https://user:hunter2@api.example.com", extra={"api_key": "k"})
    (record,) = [r for r in stream.records() if r["logger"] == "httpx"]
    assert "hunter2" not in record["message"]
    assert record["api_key"] == "[REDACTED]"


def test_it_can_leave_the_stdlib_alone(root_handlers: Any) -> None:
    stream = io.StringIO()
    opswatch.init(stream=stream, format="json", capture_stdlib=False)
    logging.getLogger("quiet").error("not ours")
    assert "not ours" not in stream.getvalue()


def test_it_puts_the_roots_default_level_back_at_shutdown(root_handlers: Any) -> None:
    root_handlers.setLevel(logging.WARNING)
    opswatch.init(stream=io.StringIO(), format="json")
    assert root_handlers.level == logging.INFO  # info from libraries reaches opswatch while installed
    opswatch.shutdown()
    assert root_handlers.level == logging.WARNING
