"""The record: one flat dict per event, the shape that travels from the logger to every sink.

A record is a plain ``dict[str, Any]`` (structlog's lesson: a pipeline of small functions over a dict is
easy to test and cheap to run). The keys the SDK always sets are listed in ``CORE_FIELDS``; every other key
is a field the caller gave. This module holds the pieces every part agrees on: level names and numbers,
event ids, timestamps, and the serialized form of an exception.
"""

from __future__ import annotations

import functools
import itertools
import linecache
import os
import re
import sys
import sysconfig
import time
import types
from typing import Any, Final

import orjson

from ._limits import (
    CONTEXT_FRAMES,
    CONTEXT_LINE_CHARS,
    CONTEXT_LINES,
    MAX_RECORD_BYTES,
    TRUNCATION_MARKER,
)

Record = dict[str, Any]

TRACE: Final = 5
DEBUG: Final = 10
INFO: Final = 20
WARN: Final = 30
ERROR: Final = 40
FATAL: Final = 50

#: Canonical level names, in order; these are the values of ``record["level"]``.
LEVEL_NAMES: Final[dict[int, str]] = {
    TRACE: "trace",
    DEBUG: "debug",
    INFO: "info",
    WARN: "warn",
    ERROR: "error",
    FATAL: "fatal",
}

#: Every accepted spelling, canonical names and aliases, to its number.
LEVEL_NUMBERS: Final[dict[str, int]] = {
    **{name: number for number, name in LEVEL_NAMES.items()},
    "warning": WARN,
    "critical": FATAL,
    "exception": ERROR,
}

#: Keys the SDK sets on every record; the server stores them as real columns.
CORE_FIELDS: Final = (
    "timestamp",
    "level",
    "logger",
    "message",
    "event_id",
    "service",
    "environment",
    "release",
    "host",
    "pid",
)


def parse_level(value: str | int) -> int:
    """Return the level number for a name (any case, aliases included) or a number.

    Raises ``ValueError`` naming the accepted names when the value is not a level.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        number = LEVEL_NUMBERS.get(value.strip().lower())
        if number is not None:
            return number
    raise ValueError(f"unknown level {value!r} (expected one of {', '.join(LEVEL_NAMES.values())})")


def level_name(number: int) -> str:
    """Return the canonical name of the highest level at or below ``number``."""
    best = "trace"
    for threshold, name in LEVEL_NAMES.items():
        if number >= threshold:
            best = name
    return best


# -- event ids ---------------------------------------------------------------------------------------
# A random 64-bit prefix per process plus a counter: unique across processes, 32 hex characters like a
# Sentry event id, and about ten times cheaper than uuid4() on the logging hot path.

_id_prefix = os.urandom(8).hex()
_id_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


def _reset_ids_after_fork() -> None:
    global _id_prefix, _id_counter
    _id_prefix = os.urandom(8).hex()
    _id_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


os.register_at_fork(after_in_child=_reset_ids_after_fork)


def new_event_id() -> str:
    """Return a new 32-hex-character event id, unique across processes and forks."""
    return f"{_id_prefix}{next(_id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


# -- timestamps --------------------------------------------------------------------------------------

_second_cache: tuple[int, str] = (-1, "")


def format_timestamp(epoch: float) -> str:
    """Format seconds since the epoch as RFC 3339 UTC with milliseconds: ``2025-11-01T02:00:00.123Z``.

    The time is cut (not rounded) to the millisecond, after rounding to the microsecond: a float epoch
    carries ~0.2 µs of noise, and 60 ms past a second must not become 59.999 and print as 59.
    """
    return format_millis(round(epoch * 1_000_000) // 1000)


def format_millis(millis: int) -> str:
    """Format milliseconds since the epoch as RFC 3339 UTC with milliseconds."""
    global _second_cache
    whole, fraction = divmod(millis, 1000)
    cached_second, prefix = _second_cache
    if whole != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second_cache = (whole, prefix)
    return f"{prefix}.{fraction:03d}Z"


def now_timestamp() -> str:
    """The current time in the record format."""
    return format_timestamp(time.time())


# -- exceptions --------------------------------------------------------------------------------------

_STDLIB = sysconfig.get_paths()["stdlib"]
_OWN_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_dumps = orjson.dumps
_JSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
_MAX_FRAMES = 100
_MAX_CHAIN = 10


#: ``opswatch demo``'s simulated app ships inside opswatch, but it is an application: its frames are.
_DEMO_APP = os.path.join(_OWN_PACKAGE, "cli", "_church_app.py")


def _in_app(filename: str) -> bool:
    """A frame is the application's unless it lives in an installed package, the stdlib or opswatch."""
    return filename == _DEMO_APP or not (
        "site-packages" in filename
        or "dist-packages" in filename
        or filename.startswith("<")
        or filename.startswith(_STDLIB)
        or filename.startswith(_OWN_PACKAGE)
    )


def module_relative_path(path: str, module: Any) -> str | None:
    """``path`` from the import root of ``module`` (``/srv/app/shop/cart.py`` of ``shop.cart`` is
    ``shop/cart.py``), or None when the path does not end the way the module's name says."""
    if not isinstance(module, str) or not module or module == "__main__":
        return None
    parts = path.replace("\\", "/").split("/")
    depth = module.count(".") + (2 if parts[-1] == "__init__.py" else 1)
    tail = parts[-depth:]
    if len(parts) <= depth or [os.path.splitext(p)[0] for p in tail[:-1]] != module.split(".")[: depth - 1]:
        return None
    return "/".join(tail)


@functools.lru_cache(maxsize=2048)
def _shown_path(filename: str, module: str | None, in_app: bool, cwd: str) -> str:
    """Where a frame's file is, as people read it: relative to the project root (the working directory)
    for the application's files, else relative to the import root of its module (``django/db/utils.py``,
    ``json/decoder.py``), else relative to the deepest ``sys.path`` entry holding it; else as it is.
    Cached: the same frames recur, and the ``sys.path`` walk costs microseconds."""
    if filename.startswith("<"):
        return filename
    try:
        path = os.path.abspath(filename)
        root = os.path.join(cwd, "") if cwd else None
        if in_app and root and path.startswith(root):
            return path[len(root) :]
        relative = module_relative_path(path, module)
        if relative is not None:
            return relative
        roots = [entry for entry in sys.path if entry and path.startswith(os.path.join(entry, ""))]
        if roots:
            return path[len(os.path.join(max(roots, key=len), "")) :]
    except (OSError, ValueError):  # a strange name: keep it as it is
        pass
    return filename


#: A string literal given to a name in source code: ``password = "x"``, ``"api_key": 'x'``, ``token="x"``,
#: ``DB_PASSWORD: str = "x"``, ``headers["Authorization"] = "x"``.
_LITERAL_FOR_NAME = re.compile(
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_]*)"""
    r"""(?P<between>["']?\]?\s*(?::\s*[A-Za-z_][\w.\[\], |]*?\s*=|:=|=|:)\s*[rbuRBU]{0,2})"""
    r"""(?P<quote>["'])(?P<value>(?:\\.|(?!(?P=quote)).)*)(?P=quote)"""
)
#: What a secret's literal in a source line becomes (the redactor's default censor).
_SOURCE_CENSOR = "[REDACTED]"


def _cut(text: str) -> str:
    """A source line, without its newline, cut at ``CONTEXT_LINE_CHARS``, with literals given to
    secret-named keys censored (``password = "hunter2"``: a source line is where such a value sits
    in plain sight, and no value pattern would recognize it)."""
    text = text.rstrip("\r\n")
    if text.count('"') + text.count("'") >= 2 and ("=" in text or ":" in text):
        text = _LITERAL_FOR_NAME.sub(_censor_literal, text)
    return text if len(text) <= CONTEXT_LINE_CHARS else text[:CONTEXT_LINE_CHARS] + TRUNCATION_MARKER


@functools.cache
def _key_judge() -> Any:
    from .redact import Redactor

    return Redactor()


def _censor_literal(match: re.Match[str]) -> str:
    if not match.group("value") or not _key_judge().key_is_secret(match.group("name")):
        return match.group(0)
    quote = match.group("quote")
    return f"{match.group('name')}{match.group('between')}{quote}{_SOURCE_CENSOR}{quote}"


@functools.lru_cache(maxsize=256)  # at most 256 x 11 x 200 characters (~560 KB), typically far less
def _source(filename: str, line: int) -> tuple[tuple[str, ...], str, tuple[str, ...]] | None:
    """The lines before ``line``, the line, and the lines after it (bounded, cut), or None."""
    lines = linecache.getlines(filename)
    if not 1 <= line <= len(lines):
        return None
    index = line - 1
    before = tuple(_cut(text) for text in lines[max(0, index - CONTEXT_LINES) : index])
    after = tuple(_cut(text) for text in lines[index + 1 : index + 1 + CONTEXT_LINES])
    return before, _cut(lines[index]), after


def _context(frame: dict[str, Any], filename: str, line: int, module_globals: dict[str, Any]) -> None:
    """Add ``context_line`` and up to ``CONTEXT_LINES`` lines before and after it (each cut at
    ``CONTEXT_LINE_CHARS``), as sentry-sdk sends them; nothing when the source cannot be read."""
    try:
        if filename not in linecache.cache:  # lets a module's loader (zip imports) give its source
            linecache.lazycache(filename, module_globals)
        found = _source(filename, line)
    except Exception:  # a loader that raises must not break logging
        return
    if found is not None:
        before, current, after = found
        frame.update(pre_context=list(before), context_line=current, post_context=list(after))


def _frames(tb: types.TracebackType | None) -> list[dict[str, Any]]:
    raw: list[tuple[types.TracebackType, dict[str, Any]]] = []
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory was removed
        cwd = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        filename = code.co_filename
        module = tb.tb_frame.f_globals.get("__name__")
        in_app = _in_app(filename)
        frame = {
            "file": _shown_path(filename, module if isinstance(module, str) else None, in_app, cwd),
            "line": tb.tb_lineno,
            "function": code.co_name,
            "module": module,
            "in_app": in_app,
        }
        raw.append((tb, frame))
        tb = tb.tb_next
    if len(raw) > _MAX_FRAMES:
        half = _MAX_FRAMES // 2
        raw = raw[:half] + raw[-half:]
    with_context = 0
    for frame_tb, frame in reversed(raw):  # the innermost application frames tell the most
        if frame["in_app"] and with_context < CONTEXT_FRAMES:
            with_context += 1
            code_file = frame_tb.tb_frame.f_code.co_filename
            _context(frame, code_file, frame_tb.tb_lineno, frame_tb.tb_frame.f_globals)
    return [frame for _, frame in raw]


def serialize_exception(error: BaseException) -> dict[str, Any]:
    """Turn an exception into ``{type, message, stack, cause}``; ``cause`` holds the chained exception.

    Frames run caller to callee (the last frame raised), each ``{file, line, function, module, in_app}``;
    ``file`` is relative to the project root or the module's import root, and the innermost application
    frames carry their source as ``pre_context``, ``context_line`` and ``post_context`` (bounded by
    ``CONTEXT_*`` in ``_limits``; the record's redaction covers them like every other string).
    The chain follows ``__cause__`` and, unless suppressed, ``__context__``, up to a bounded depth.
    """
    result: dict[str, Any] = {}
    current: dict[str, Any] = result
    exc: BaseException | None = error
    seen: set[int] = set()
    depth = 0
    while exc is not None and id(exc) not in seen and depth < _MAX_CHAIN:
        seen.add(id(exc))
        kind = type(exc)
        module = kind.__module__
        name = kind.__qualname__
        current["type"] = name if module in ("builtins", "__main__") else f"{module}.{name}"
        try:
            current["message"] = str(exc)
        except Exception:  # a broken __str__ must not break logging
            current["message"] = f"<unprintable {kind.__qualname__}>"
        current["stack"] = _frames(exc.__traceback__)
        nxt = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if nxt is not None and id(nxt) not in seen:
            cause: dict[str, Any] = {}
            current["cause"] = cause
            current = cause
        exc = nxt
        depth += 1
    return result


# -- serialization -----------------------------------------------------------------------------------


def _json_fallback(value: Any) -> Any:
    """orjson's ``default``: what a value that orjson cannot write becomes (with a marker)."""
    from .redact import Redactor

    return Redactor(enabled=False).redact(value)


def to_json(record: Record) -> bytes:
    """Serialize a record as one JSON line (with the newline); never raises.

    Values orjson cannot write become their plain form; circular structures become markers; a record
    larger than ``MAX_RECORD_BYTES`` has its largest fields cut and carries ``"_truncated": true``.
    """
    try:
        data = _dumps(record, default=_json_fallback, option=_JSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        from .redact import Redactor

        data = orjson.dumps(Redactor(enabled=False).redact(record), option=_JSON_OPTIONS)
    if len(data) > MAX_RECORD_BYTES:
        data = _shrink(record, data)
    return data


def _shrink(record: Record, data: bytes) -> bytes:
    slim = dict(record)
    sizes = sorted(
        ((len(orjson.dumps(v, default=str)), k) for k, v in slim.items() if k not in CORE_FIELDS),
        reverse=True,
    )
    for size, key in sizes:
        if len(data) <= MAX_RECORD_BYTES:
            break
        text = orjson.dumps(slim[key], default=str).decode()
        keep = max(0, MAX_RECORD_BYTES // 8 - (len(data) - MAX_RECORD_BYTES) // 2)
        slim[key] = text[:keep] + TRUNCATION_MARKER if size > keep else text
        slim["_truncated"] = True
        data = orjson.dumps(slim, default=str, option=_JSON_OPTIONS)
    if len(data) > MAX_RECORD_BYTES and isinstance(slim.get("message"), str):
        slim["message"] = slim["message"][: MAX_RECORD_BYTES // 4] + TRUNCATION_MARKER
        slim["_truncated"] = True
        data = orjson.dumps(slim, default=str, option=_JSON_OPTIONS)
    return data
