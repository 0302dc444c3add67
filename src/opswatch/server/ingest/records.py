"""Checking one incoming record against the limits and normalizing it to the store's shape.

Every ingest path ends here, so a record in the store always has: an ``event_id`` (given, or new), a
``timestamp`` in the SDK's format (RFC 3339 UTC with milliseconds; RFC 3339 strings with any offset or
fraction, and float epoch seconds, are converted), a canonical ``level`` name, a string ``message``, and
a ``kind``. ``project_id`` and ``received_at`` are the server's: values a sender put there are replaced.

``kind`` is the sender's when it names a known kind; otherwise a record with an ``error`` object or at
level error or fatal is an ``error``, and anything else a ``log``.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import re
from typing import Any, Final

import orjson

from ...record import ERROR, LEVEL_NAMES, LEVEL_NUMBERS, format_timestamp, level_name, new_event_id
from .. import limits

#: Kinds a sender may set. ``state_change`` records are written by the server itself.
CLIENT_KINDS: Final = frozenset({"log", "error", "check_in", "transaction", "metric", "span"})
#: Every kind found in the store.
KINDS: Final = CLIENT_KINDS | {"state_change"}

_EVENT_ID = re.compile(rf"[0-9A-Za-z_.:-]{{1,{limits.MAX_EVENT_ID_LENGTH}}}")
_ERROR_LEVELS = frozenset(name for number, name in LEVEL_NAMES.items() if number >= ERROR)


@dataclasses.dataclass(frozen=True, slots=True)
class Rejection:
    """One refused event: its ``index`` in the batch, a metric ``code`` and a human ``reason``."""

    index: int
    code: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The answer's form: ``{"index": i, "reason": "..."}``."""
        return {"index": self.index, "reason": self.reason}


class Refused(ValueError):
    """Raised inside a check: the record is refused with ``code`` and the message as reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def normalize(
    record: dict[str, Any],
    received_epoch: float,
    received_at: str,
    kinds: frozenset[str] = CLIENT_KINDS,
    bounded: frozenset[str] = frozenset(),
) -> None:
    """Check ``record`` against the per-event limits and normalize it in place; raise ``Refused``.

    ``received_epoch``/``received_at`` (the same instant) stand in for a missing timestamp and become
    ``received_at``. ``kinds`` are the kinds the caller may set (the server's own writers add
    ``state_change``). ``bounded`` names fields the caller built itself with a known, shallow depth
    (the Sentry mapping's ``error``); their depth is not walked again.
    """
    if len(record) > limits.MAX_FIELDS_PER_EVENT:
        raise Refused(
            "too_many_fields",
            f"the event has {len(record)} fields, over the limit of {limits.MAX_FIELDS_PER_EVENT}",
        )
    for key, value in record.items():
        if len(key) > limits.MAX_FIELD_NAME_LENGTH:
            raise Refused(
                "bad_field",
                f"field name {key[:40]!r}… is over {limits.MAX_FIELD_NAME_LENGTH} characters",
            )
        kind = type(value)
        if (kind is dict or kind is list) and key not in bounded and _too_deep(value, 2):
            raise Refused("too_deep", f"field {key!r} nests deeper than {limits.MAX_DEPTH} levels")

    event_id = record.get("event_id")
    if event_id is None:
        record["event_id"] = new_event_id()
    elif type(event_id) is not str or not _EVENT_ID.fullmatch(event_id):
        raise Refused(
            "bad_event_id",
            f"event_id must be a string of 1 to {limits.MAX_EVENT_ID_LENGTH} letters, digits or -_.:",
        )

    stamp = record.get("timestamp")
    if stamp is None:
        record["timestamp"] = received_at
    elif not (type(stamp) is str and _is_canonical(stamp)):
        record["timestamp"] = parse_timestamp(stamp)

    level = record.get("level")
    if level is None:
        record["level"] = level = "info"
    elif level not in LEVEL_NAMES.values():
        record["level"] = level = canonical_level(level)

    message = record.get("message")
    if message is None:
        record["message"] = ""
    elif type(message) is not str:
        record["message"] = _as_text(message)

    logger = record.get("logger")
    if logger is not None and type(logger) is not str:
        record["logger"] = _as_text(logger)

    given_kind = record.get("kind")
    if given_kind is None:
        error = record.get("error")
        record["kind"] = "error" if (error is not None and error != "") or level in _ERROR_LEVELS else "log"
    elif given_kind not in kinds:
        raise Refused("bad_kind", f"kind must be one of {', '.join(sorted(kinds))}")

    record.pop("project_id", None)
    record["received_at"] = received_at
    check_numbers(record)


def canonical_level(value: Any) -> str:
    """The canonical level name for a name (any case, aliases, Sentry's ``log``) or number; or ``Refused``."""
    if type(value) is str:
        number = LEVEL_NUMBERS.get(value.strip().lower())
        if number is None and value.strip().lower() == "log":
            number = LEVEL_NUMBERS["info"]
        if number is not None:
            return LEVEL_NAMES[number]
    elif type(value) is int and 0 <= value <= 100:
        return level_name(value)
    raise Refused("bad_level", f"level {str(value)[:40]!r} is not one of {', '.join(LEVEL_NAMES.values())}")


def parse_timestamp(value: Any) -> str:
    """An RFC 3339 string (any offset or fraction; naive means UTC) or epoch seconds, in the record format.

    Raises ``Refused`` for anything else, and for instants before 1970 or after 9999.
    """
    if type(value) is str:
        try:
            moment = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            raise Refused("bad_timestamp", f"timestamp {value[:40]!r} is not RFC 3339") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        epoch = moment.timestamp()
    elif type(value) in (int, float):
        epoch = float(value)
    else:
        raise Refused("bad_timestamp", "timestamp must be an RFC 3339 string or epoch seconds")
    if not 0 <= epoch < 253_402_300_800:  # 1970 .. the end of 9999
        raise Refused("bad_timestamp", f"timestamp {value!r} is out of range")
    return format_timestamp(epoch)


def _is_canonical(stamp: str) -> bool:
    """True for exactly ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (the SDK's own format, the common case)."""
    return (
        len(stamp) == 24
        and stamp[23] == "Z"
        and stamp[10] == "T"
        and stamp[19] == "."
        and stamp[4] == "-"
        and stamp[7] == "-"
        and stamp[13] == ":"
        and stamp[16] == ":"
        and stamp[:4].isdigit()
        and stamp[20:23].isdigit()
        and _real_second(stamp[:19])
    )


@functools.lru_cache(maxsize=4096)
def _real_second(text: str) -> bool:
    """True when ``YYYY-MM-DDTHH:MM:SS`` names a real second (not ``2026-02-30T25:61:61``). Cached:
    the events of a batch share their seconds."""
    try:
        datetime.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _too_deep(value: Any, depth: int) -> bool:
    """True when ``value`` (at nesting ``depth``) has containers deeper than the limit."""
    if depth > limits.MAX_DEPTH:
        return True
    items = value.values() if type(value) is dict else value
    for item in items:
        kind = type(item)
        if (kind is dict or kind is list) and _too_deep(item, depth + 1):
            return True
    return False


def _as_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


from .bounds import check_numbers  # noqa: E402  (bounds imports Refused from here)
