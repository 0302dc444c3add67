"""pino's NDJSON lines, taken as they are on the native endpoint and turned into opswatch records.

pino (the Node.js logger) writes one JSON object per line: ``level`` as a number (10 trace, 20 debug,
30 info, 40 warn, 50 error, 60 fatal), ``time`` in epoch milliseconds, ``msg``, ``pid``, ``hostname``,
``name`` when the logger has one, the bindings of child loggers as plain keys, and ``err`` as
``{type, message, stack, ...}`` with V8's stack text (``    at fn (file:line:col)``, newest call first,
and ``caused by: ...`` sections for ``Error.cause``).

``is_pino`` tells such a line from an opswatch record: opswatch records carry ``message`` and
``timestamp`` (and name their level), pino lines carry neither and have ``msg`` or ``time``. Numbers in
``level`` keep opswatch's own scale on every other record. ``to_record`` rewrites a pino line in place:
``msg`` becomes ``message``, ``time`` ``timestamp``, ``hostname`` ``host``, ``name`` ``logger``, and
``err`` an ``error`` with frames (caller to callee, as everywhere in opswatch) and its causes under
``cause``. Everything else, bindings included, stays a field. Nothing here raises: values of an
unexpected type are left as they came, for ``records.normalize`` to judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .sentry_mapping import guess_in_app

#: pino's level numbers, each the lowest number of its level (custom levels fall in between).
_LEVELS: Final = ((60, "fatal"), (50, "error"), (40, "warn"), (30, "info"), (20, "debug"))
#: Epoch values above this are milliseconds (pino's default); below, seconds (``stdTimeFunctions.unixTime``).
_MILLISECONDS_FROM: Final = 100_000_000_000
#: Causes kept per error, and frames kept per stack (the first and last halves when there are more).
MAX_CAUSES: Final = 10
MAX_FRAMES: Final = 100
#: Scalar extras of ``err`` kept on the error besides type, message and stack (``code``, ``errno`` ...).
MAX_ERROR_EXTRAS: Final = 20
#: Longest stack line read as a frame (V8's are a path and a function name: far shorter).
MAX_FRAME_LINE: Final = 2_000

_CAUSED_BY = "\ncaused by: "
_ERROR_KEYS: Final = frozenset({"type", "message", "stack", "cause", "aggregateErrors"})


def is_pino(record: Mapping[str, Any]) -> bool:
    """True for a line in pino's shape: ``msg`` or ``time``, and neither ``message`` nor ``timestamp``."""
    return ("msg" in record or "time" in record) and "message" not in record and "timestamp" not in record


def pino_level(value: Any) -> Any:
    """pino's level number as a level name (custom numbers go to the level below); other values as given."""
    if type(value) is not int:
        return value
    for lowest, name in _LEVELS:
        if value >= lowest:
            return name
    return "trace"


def to_record(record: dict[str, Any]) -> None:
    """Rewrite a pino line (``is_pino``) in place into opswatch's record shape."""
    record["level"] = pino_level(record.get("level", 30))
    if "msg" in record:
        record["message"] = record.pop("msg")
    if "time" in record:
        record["timestamp"] = _timestamp(record.pop("time"))
    if "hostname" in record and "host" not in record:
        record["host"] = record.pop("hostname")
    if type(record.get("name")) is str and "logger" not in record:
        record["logger"] = record.pop("name")
    err = record.get("err")
    if isinstance(err, Mapping) and "error" not in record:
        error = pino_error(err)
        if error is not None:
            del record["err"]
            record["error"] = error
            if not record.get("message"):
                record["message"] = error["message"] or error["type"]


def pino_error(err: Mapping[str, Any]) -> dict[str, Any] | None:
    """pino's serialized error as opswatch's ``error``: type, message, frames, causes; None if unreadable."""
    stack = err.get("stack")
    sections = stack.split(_CAUSED_BY) if isinstance(stack, str) else []
    given_type = err.get("type")
    header_type, header_message, frames = _section(sections[0]) if sections else ("", "", [])
    kind = given_type if isinstance(given_type, str) and given_type else header_type
    message = err.get("message")
    if not kind and not isinstance(message, str):
        return None
    if len(sections) > 1 and header_message and header_type == kind:
        message = header_message  # pino appends the causes' messages; they have nodes of their own
    error: dict[str, Any] = {
        "type": kind or "Error",
        "message": message if isinstance(message, str) else "",
        "stack": frames,
    }
    extras = [(k, v) for k, v in err.items() if k not in _ERROR_KEYS and isinstance(v, (str, int, float))]
    for key, value in extras[:MAX_ERROR_EXTRAS]:
        error.setdefault(key, value)
    node = error
    for section in sections[1 : MAX_CAUSES + 1]:
        cause_type, cause_message, cause_frames = _section(section)
        cause = {"type": cause_type or "Error", "message": cause_message, "stack": cause_frames}
        node["cause"] = cause
        node = cause
    return error


def v8_frames(lines: list[str]) -> list[dict[str, Any]]:
    """V8 stack lines (``    at fn (file:line:col)``, newest first) as frames, caller to callee."""
    frames: list[dict[str, Any]] = []
    for line in lines:
        frame = _frame(line)
        if frame is not None:
            frames.append(frame)
    frames.reverse()
    if len(frames) > MAX_FRAMES:
        half = MAX_FRAMES // 2
        frames = frames[:half] + frames[-half:]
    return frames


def _section(text: str) -> tuple[str, str, list[dict[str, Any]]]:
    """One error of a stack text: its header (``Type: message``, maybe over several lines) and frames."""
    lines = text.split("\n")
    first_frame = next((i for i, line in enumerate(lines) if line.lstrip().startswith("at ")), len(lines))
    header = "\n".join(lines[:first_frame]).strip()
    kind, sep, message = header.partition(": ")
    if not sep and " " in kind:  # a header that is a message without a type
        kind, message = "", header
    return kind, message, v8_frames(lines[first_frame:])


def _frame(line: str) -> dict[str, Any] | None:
    """One V8 frame line, read with string operations only (linear in the line, whatever it holds)."""
    if len(line) > MAX_FRAME_LINE:
        return None
    text = line.strip()
    if not text.startswith("at "):
        return None
    text = text[3:].removeprefix("async ")
    function: str | None = None
    location = text
    if text.endswith(")") and " (" in text:
        function, _, location = text[:-1].partition(" (")
    if location.startswith("eval at "):  # "eval at f (file:1:2), <anonymous>:3:4": the outer call's place
        location = location.partition("(")[2].partition(")")[0] or location
    path, line_number, column = _location(location)
    if path.startswith("file://"):
        path = path[len("file://") :]
    frame: dict[str, Any] = {
        "file": path,
        "line": line_number,
        "function": function or None,
        "module": None,
        "in_app": guess_in_app(path),
    }
    if column is not None:
        frame["column"] = column
    return frame


def _location(text: str) -> tuple[str, int | None, int | None]:
    """``file:line:col`` (or ``file:line``, or a bare name such as ``<anonymous>``) split in three."""
    rest, _, last = text.rpartition(":")
    if not (rest and last.isdigit()):
        return text, None, None
    head, _, middle = rest.rpartition(":")
    if head and middle.isdigit():
        return head, int(middle), int(last)
    return rest, int(last), None


def _timestamp(value: Any) -> Any:
    """pino's ``time`` as the record's ``timestamp``: epoch milliseconds become seconds; seconds and ISO
    strings pass as they are (``records.normalize`` reads those, and refuses what it cannot read)."""
    if type(value) in (int, float) and value >= _MILLISECONDS_FROM:
        return value / 1000
    return value
