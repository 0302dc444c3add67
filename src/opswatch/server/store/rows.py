"""Records to rows and rows back to records.

``split`` takes a record apart in the appending thread: common fields into their columns (converted to
the column types), attributes with a promoted column of the right type into that column, everything
else *pending*. The writer thread settles pending values with the key catalog (``place``): a promoted
column, or the ``attributes`` container. A common field whose value cannot be converted
(``pid: "web-1"``) is not lost: it is pending under its own name, which the catalog never promotes, so
it lands in the container. ``to_record`` reverses all of it, for ``tail`` and ``get_events``.

Timestamps travel as RFC 3339 UTC text with milliseconds (the SDK's format, ``2025-11-01T02:00:00.123Z``):
DuckDB parses it in C++, and its text order is time order, which the idempotency check relies on.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from ...record import format_timestamp, new_event_id
from .catalog import JSON, KeyInfo, coerce
from .layout import CONTAINER, CORE_COLUMNS

_KIND: Final = {column.name: column.kind for column in CORE_COLUMNS}
_INT32: Final = 2**31
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_INVALID: Final = object()


def canonical_timestamp(value: Any) -> str | None:
    """``value`` (RFC 3339 text with any offset, epoch seconds, or a datetime) in the record format.

    Naive times are UTC. None when it is none of those or outside years 1970-9999.
    """
    kind = type(value)
    if kind is str:
        if _is_canonical(value):
            return str(value)
        try:
            moment = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    elif kind is datetime.datetime:
        moment = value
    elif kind is int or kind is float:
        epoch = float(value)
        return format_timestamp(epoch) if 0 <= epoch < 253_402_300_800 else None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    epoch = moment.timestamp()
    return format_timestamp(epoch) if 0 <= epoch < 253_402_300_800 else None


def _is_canonical(stamp: str) -> bool:
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
    )


def _convert(kind: str, value: Any) -> Any:
    """A common field's value in its column's form, or ``_INVALID``."""
    if kind == "text":
        if type(value) is str:
            return value
        if type(value) in (int, float, bool):
            return orjson.dumps(value).decode()
        return _INVALID
    if kind == "int":
        if type(value) is int and -_INT32 <= value < _INT32:
            return value
        if type(value) is str and value.strip().lstrip("-").isdigit():
            number = int(value)
            return number if -_INT32 <= number < _INT32 else _INVALID
        return _INVALID
    if kind == "float":
        if type(value) in (int, float):
            return float(value)
        return _INVALID
    if kind == "timestamp":
        stamp = canonical_timestamp(value)
        return _INVALID if stamp is None else stamp
    return value  # json: any JSON value


#: A field name -> (its promoted column, the Python types that column takes as they are).
Placements = Mapping[str, tuple[str, tuple[type, ...]]]


def split(
    record: Mapping[str, Any], received_at: str, placements: Placements
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(row, pending)`` for one record, in one pass over its fields.

    ``row`` holds the common fields (converted to their column types; always ``timestamp``,
    ``received_at`` and ``event_id``: a missing or bad timestamp becomes ``received_at``, a missing id
    a new one) and every attribute whose promoted column takes its value as it is. ``pending`` holds
    the rest (cold keys, new keys, values of another type, unconvertible common fields): the writer
    settles them with the catalog (``place``). In a steady state ``pending`` is None for most records.
    """
    row: dict[str, Any] = {}
    pending: dict[str, Any] | None = None
    kinds = _KIND
    for name, value in record.items():
        if value is None:
            continue
        kind = kinds.get(name)
        if kind is None:
            target = placements.get(name)
            if (
                target is not None
                and type(value) in target[1]
                and target[0] not in row
                and (type(value) is not int or _INT64_MIN <= value <= _INT64_MAX)
            ):
                row[target[0]] = value
            else:
                if pending is None:
                    pending = {}
                pending[name] = value
            continue
        if kind == "text" and type(value) is str:
            row[name] = value  # the common case, without a call
            continue
        converted = _convert(kind, value)
        if converted is _INVALID:
            if pending is None:
                pending = {}
            pending[name] = value
        else:
            row[name] = converted
    if "received_at" not in row:
        row["received_at"] = received_at
    if "timestamp" not in row:
        row["timestamp"] = row["received_at"]
    if "event_id" not in row:
        row["event_id"] = new_event_id()
    return row, pending


def place(
    row: dict[str, Any], pending: Mapping[str, Any], keys: Mapping[str, KeyInfo], lower: Any
) -> dict[str, Any]:
    """A copy of ``row`` with each pending value in its promoted column or the container."""
    row = dict(row)
    container: dict[str, Any] | None = None
    for name, value in pending.items():
        info = keys.get(lower(name))
        column = info.column if info is not None else None
        if column is not None and column not in row:
            row[column] = coerce(value, info.type)  # type: ignore[union-attr]
        else:
            if container is None:
                container = {}
            container[name] = value
    if container is not None:
        row[CONTAINER] = container
    return row


def to_json_line(row: Mapping[str, Any]) -> bytes:
    """One row as a JSON line; integers past 64 bits (which orjson refuses) become text."""
    try:
        return orjson.dumps(row, default=str)
    except orjson.JSONEncodeError:
        return orjson.dumps(_wide_ints_as_text(row), default=str)


def _wide_ints_as_text(value: Any) -> Any:
    if type(value) is int and not _INT64_MIN <= value <= _INT64_MAX:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _wide_ints_as_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wide_ints_as_text(v) for v in value]
    return value


def format_moment(moment: Any) -> Any:
    """A TIMESTAMP read back from DuckDB in the record format."""
    if isinstance(moment, datetime.datetime):
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment


def to_record(
    values: Sequence[Any], columns: Sequence[str], promoted: Mapping[str, KeyInfo]
) -> dict[str, Any]:
    """A stored row (``values`` of physical ``columns``) as a record.

    Common fields first, then the container's fields, then promoted attributes under the spelling the
    catalog keeps (a ``VARCHAR`` column of a key with mixed types gives its values back as text).
    """
    record: dict[str, Any] = {}
    later: list[tuple[str, Any]] = []
    for column, value in zip(columns, values, strict=True):
        if value is None:
            continue
        kind = _KIND.get(column)
        if kind is not None:
            if kind == "timestamp":
                record[column] = format_moment(value)
            elif kind == "json":
                record[column] = orjson.loads(value)
            else:
                record[column] = value
        elif column == CONTAINER:
            for name, item in orjson.loads(value).items():
                record.setdefault(name, item)
        else:
            later.append((column, value))
    for column, value in later:
        info = promoted.get(column)
        if info is None:
            continue
        record[info.name] = orjson.loads(value) if info.type == JSON else value
    return record
