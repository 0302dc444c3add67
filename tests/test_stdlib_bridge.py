"""The stdlib bridge: ``logging`` records flow through the opswatch pipeline, printed once."""

from __future__ import annotations

import io
import logging
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


def test_it_routes_stdlib_records_with_extra_fields_and_exc_info(json_console: Any, root_handlers: Any) -> None:
    stream = json_console()
    log = logging.getLogger("sqlalchemy.engine")
    log.setLevel(logging.INFO)
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


def test_it_maps_stdlib_levels(json_console: Any, root_handlers: Any) -> None:
    stream = json_console()
    log = logging.getLogger("levels")
    log.setLevel(logging.DEBUG)
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


def test_it_takes_over_uvicorns_non_propagating_loggers(root_handlers: Any) -> None:
    uvicorn = logging.getLogger("uvicorn.error")
    own = io.StringIO()
    handler = logging.StreamHandler(own)
    uvicorn.addHandler(handler)
    uvicorn.propagate = False
    uvicorn.setLevel(logging.INFO)
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
