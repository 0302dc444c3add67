"""The logger: every call shape, every level, bind/child loggers, context across tasks and threads."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest

import opswatch
from opswatch.testing import capture_logs


class CardError(Exception):
    """A payment provider's decline, as the donations service raises it."""


def charge() -> None:
    raise CardError("card_declined")


def test_it_writes_the_seed_shapes_and_the_python_shapes(json_console: Any) -> None:
    stream = json_console(service="donations-api", environment="production", release="1.2.3")
    log = opswatch.get_logger("donations")
    log.info("Donation created successfully", operation="donations.create.success", donation_id="d1", amount=100)
    log.info("Cron job started", {"operation": "cron.x.start", "monitorSlug": "check-expired-subscriptions"})
    try:
        charge()
    except CardError as err:
        log.error("Payment failed", {"operation": "payment.stripe.charge", "amount": 100}, err)
        log.exception("Payment failed", operation="payment.stripe.charge")
        log.error("Payment failed", error=err, operation="payment.stripe.charge")
        log.error("Payment failed", err)
    first, second, *errors = stream.records()
    assert first["message"] == "Donation created successfully"
    assert first["operation"] == "donations.create.success"
    assert (first["donation_id"], first["amount"]) == ("d1", 100)
    assert second["monitorSlug"] == "check-expired-subscriptions"
    assert len(errors) == 4
    for record in errors:
        assert record["level"] == "error"
        assert record["error"]["type"].endswith("CardError")
        assert record["error"]["message"] == "card_declined"
        assert record["error"]["stack"][-1]["function"] == "charge"
    assert errors[0]["amount"] == 100
    assert "error" not in {k for k, v in errors[2].items() if not isinstance(v, dict)}


def test_it_puts_the_core_fields_on_every_record(json_console: Any) -> None:
    stream = json_console(service="donations-api", environment="staging", release="r9")
    opswatch.get_logger("x").info("hello")
    (record,) = stream.records()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert re.fullmatch(r"[0-9a-f]{32}", record["event_id"])
    assert record["level"] == "info"
    assert record["logger"] == "x"
    assert (record["service"], record["environment"], record["release"]) == ("donations-api", "staging", "r9")
    assert isinstance(record["host"], str) and record["host"]
    assert isinstance(record["pid"], int)


def test_it_gives_every_record_a_distinct_event_id() -> None:
    opswatch.init(console=False)
    with capture_logs() as logs:
        for _ in range(1000):
            opswatch.logger.info("x")
    assert len({r["event_id"] for r in logs}) == 1000


@pytest.mark.parametrize(
    ("method", "level"),
    [("trace", "trace"), ("debug", "debug"), ("info", "info"), ("warn", "warn"), ("warning", "warn"),
     ("error", "error"), ("fatal", "fatal"), ("critical", "fatal")],
)
def test_it_logs_at_every_level_and_alias(json_console: Any, method: str, level: str) -> None:
    stream = json_console()
    getattr(opswatch.get_logger("x"), method)("m")
    assert [r["level"] for r in stream.records()] == [level]


def test_it_filters_below_the_console_level(json_console: Any) -> None:
    stream = json_console(level="warn")
    log = opswatch.get_logger("x")
    log.debug("no")
    log.info("no")
    log.warn("yes")
    log.log("warning", "yes too")
    assert [r["message"] for r in stream.records()] == ["yes", "yes too"]
    assert not log.is_enabled_for("info")
    assert log.is_enabled_for("error")


def test_it_filters_levels_per_sink(json_console: Any) -> None:
    stream = json_console(level="info")
    with capture_logs(level="debug") as logs:
        opswatch.get_logger("x").debug("only the capture sink takes this")
    assert stream.records() == []
    assert [r["message"] for r in logs] == ["only the capture sink takes this"]


def test_it_binds_fields_on_child_loggers_without_touching_the_parent(json_console: Any) -> None:
    stream = json_console()
    log = opswatch.get_logger("api", service_area="giving")
    child = log.bind(request_id="r1", church_id="c1")
    child.info("a", step=1)
    log.info("b")
    child.unbind("church_id").info("c")
    log.child("db").info("d")
    a, b, c, d = stream.records()
    assert (a["request_id"], a["church_id"], a["service_area"], a["step"]) == ("r1", "c1", "giving", 1)
    assert "request_id" not in b
    assert "church_id" not in c and c["request_id"] == "r1"
    assert d["logger"] == "api.db"


def test_it_lets_call_fields_win_over_bound_fields_and_context(json_console: Any) -> None:
    stream = json_console()
    with opswatch.context(source="context", request_id="ctx"):
        opswatch.get_logger("x").bind(source="bound").info("m", source="call")
    (record,) = stream.records()
    assert record["source"] == "call"
    assert record["request_id"] == "ctx"


def test_it_never_lets_a_field_overwrite_the_core_fields(json_console: Any) -> None:
    stream = json_console()
    opswatch.get_logger("x").info("real message", message="fake", level="fatal", timestamp="yesterday", logger="y")
    (record,) = stream.records()
    assert (record["message"], record["level"], record["logger"]) == ("real message", "info", "x")
    assert record["timestamp"] != "yesterday"


def test_it_carries_context_into_records_and_drops_it_after_the_block(json_console: Any) -> None:
    stream = json_console()
    log = opswatch.get_logger("x")
    with opswatch.context(request_id="r1"):
        log.info("inside")
        with opswatch.context(church_id="c1"):
            log.info("nested")
    log.info("outside")
    inside, nested, outside = stream.records()
    assert inside["request_id"] == "r1"
    assert (nested["request_id"], nested["church_id"]) == ("r1", "c1")
    assert "request_id" not in outside


def test_it_keeps_context_separate_between_asyncio_tasks(json_console: Any) -> None:
    stream = json_console()
    log = opswatch.get_logger("x")

    async def handle(request_id: str) -> None:
        opswatch.bind_context(request_id=request_id)
        await asyncio.sleep(0.01)
        log.info("handled")

    async def main() -> None:
        await asyncio.gather(*(handle(f"r{i}") for i in range(5)))

    asyncio.run(main())
    handled = [r for r in stream.records() if r["message"] == "handled"]
    assert sorted(r["request_id"] for r in handled) == [f"r{i}" for i in range(5)]


def test_it_copies_context_into_threads_on_request(json_console: Any) -> None:
    stream = json_console()
    log = opswatch.get_logger("x")

    def work(label: str) -> None:
        log.info(label)

    with opswatch.context(request_id="r1"):
        plain = threading.Thread(target=work, args=("plain",))
        carried = threading.Thread(target=opswatch.with_context(work), args=("carried",))
    for thread in (plain, carried):
        thread.start()
        thread.join()
    by_message = {r["message"]: r for r in stream.records()}
    assert "request_id" not in by_message["plain"]
    assert by_message["carried"]["request_id"] == "r1"


def test_it_unbinds_and_clears_context(json_console: Any) -> None:
    stream = json_console()
    opswatch.bind_context(a=1, b=2)
    opswatch.unbind_context("a")
    opswatch.get_logger("x").info("one")
    opswatch.clear_context()
    opswatch.get_logger("x").info("two")
    one, two = stream.records()
    assert "a" not in one and one["b"] == 2
    assert "b" not in two


def test_it_serializes_chained_exceptions_with_their_causes(json_console: Any) -> None:
    stream = json_console()

    def fetch() -> None:
        raise ConnectionError("db down")

    try:
        try:
            fetch()
        except ConnectionError as low:
            raise RuntimeError("could not list donations") from low
    except RuntimeError:
        opswatch.get_logger("x").exception("listing failed")
    (record,) = stream.records()
    error = record["error"]
    assert error["type"] == "RuntimeError"
    assert error["cause"]["type"] == "ConnectionError"
    assert error["cause"]["stack"][-1]["function"] == "fetch"
    frame = error["stack"][0]
    assert {"file", "line", "function", "module", "in_app"} <= set(frame)
    assert frame["file"].endswith("test_logger.py") and frame["in_app"] is True
    assert frame["module"] == __name__


def test_it_follows_implicit_exception_context(json_console: Any) -> None:
    stream = json_console()
    try:
        try:
            raise KeyError("k")
        except KeyError:
            raise ValueError("while handling") from None
    except ValueError as err:
        opswatch.get_logger("x").error("suppressed", err)
    try:
        try:
            raise KeyError("k")
        except KeyError:
            raise ValueError("while handling")  # noqa: B904 - the implicit context is the point
    except ValueError as err:
        opswatch.get_logger("x").error("implicit", err)
    suppressed, implicit = stream.records()
    assert "cause" not in suppressed["error"]
    assert implicit["error"]["cause"]["type"] == "KeyError"


def test_it_marks_library_frames_as_not_in_app(json_console: Any) -> None:
    stream = json_console()
    import json

    try:
        json.loads("{not json")
    except ValueError as err:
        opswatch.get_logger("x").error("bad json", err)
    (record,) = stream.records()
    stack = record["error"]["stack"]
    assert stack[0]["in_app"] is True
    assert stack[-1]["in_app"] is False


def test_it_takes_exc_info_like_the_stdlib(json_console: Any) -> None:
    stream = json_console()
    try:
        raise KeyError("missing")
    except KeyError:
        opswatch.get_logger("x").warn("handled", exc_info=True)
    (record,) = stream.records()
    assert record["error"]["type"] == "KeyError"
    assert "exc_info" not in record


def test_it_logs_without_init_from_the_environment(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("OPSWATCH_LOG_FORMAT", "json")
    monkeypatch.setenv("OPSWATCH_SERVICE", "nightly-jobs")
    opswatch.get_logger("jobs").info("started without init")
    opswatch.flush()
    out = capsys.readouterr().out
    assert '"message":"started without init"' in out
    assert '"service":"nightly-jobs"' in out


def test_it_accepts_a_non_string_message_and_a_non_dict_context(json_console: Any) -> None:
    stream = json_console()
    log = opswatch.get_logger("x")
    log.info(12345)
    log.info("with a list context", ["a", "b"])  # type: ignore[arg-type]
    first, second = stream.records()
    assert first["message"] == "12345"
    assert second["context"] == ["a", "b"]


def test_it_returns_the_same_logger_for_a_name() -> None:
    assert opswatch.get_logger("same") is opswatch.get_logger("same")
    assert opswatch.get_logger("same", a=1) is not opswatch.get_logger("same")


def test_it_keeps_the_new_levels_when_init_runs_inside_capture_logs(json_console: Any) -> None:
    opswatch.init(console=False)
    with capture_logs():
        stream = json_console(capture_stdlib=False)  # replaces the runtime capture_logs attached to
    opswatch.get_logger("after").info("still logged")
    assert [r["message"] for r in stream.records()] == ["still logged"]
