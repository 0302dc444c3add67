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
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from ...record import format_timestamp, new_event_id
from .catalog import JSON, KeyInfo, coerce
from .layout import CONTAINER, CORE_COLUMNS, key_hash

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


_valid_seconds: dict[str, bool] = {}


def _is_canonical(stamp: str) -> bool:
    """True for a real instant written exactly ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (the SDK's own format).

    The date and time are checked for real (a month 13 would make DuckDB refuse the whole batch), once
    per distinct second: events of one batch share seconds, so this is a dictionary look-up.
    """
    if len(stamp) != 24 or stamp[23] != "Z" or stamp[19] != "." or not stamp[20:23].isdigit():
        return False
    second = stamp[:19]
    valid = _valid_seconds.get(second)
    if valid is None:
        try:
            valid = second[10] == "T" and datetime.datetime.fromisoformat(second).year >= 1970
        except ValueError:
            valid = False
        if len(_valid_seconds) >= 100_000:
            _valid_seconds.clear()
        _valid_seconds[second] = valid
    return valid


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


_NONE: Final = type(None)
_SAFE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

#: Python types each common field takes on the fast path (anything else goes through ``split``).
_CORE_FAST: Final[dict[str, tuple[type, ...]]] = {
    column.name: {
        "text": (str, _NONE),
        "timestamp": (str,),
        "int": (int, _NONE),
        "float": (float, int, _NONE),
        "json": (dict, list, str, int, float, bool, _NONE),
    }[column.kind]
    for column in CORE_COLUMNS
}
_fast_cache: tuple[object, dict[str, tuple[type, ...]]] = (None, {})


def fast_types(placements: Placements) -> dict[str, tuple[type, ...]]:
    """Field name -> the Python types the fast path takes for it: common fields and promoted keys
    (those whose name is a plain identifier, so it can name a field of ``from_json``'s structure)."""
    global _fast_cache
    owner, fast = _fast_cache
    if owner is not placements:
        fast = dict(_CORE_FAST)
        for name, (_column, fits) in placements.items():
            if is_fast_name(name):
                fast[name] = (*fits, _NONE)
        _fast_cache = (placements, fast)
    return fast


def is_fast_name(name: str) -> bool:
    """True for a promoted key's name that the fast path writes by name (a plain identifier)."""
    return _SAFE_NAME.fullmatch(name) is not None


class Prepared:
    """An append's records, taken apart in the appending thread (while the writer is inside DuckDB).

    Records whose every field has a column that takes its value as it is (the steady state: common
    fields and promoted keys of the right type) are *fast*: serialized as they are into one buffer of
    JSON lines (``lines``, line ``i`` ending at ``ends[i]``), with their ``ids`` and ``stamps``. The rest
    are *slow*: ``split`` into a row and pending values for the writer to settle with the catalog.
    One buffer, not a ``bytes`` or a dict per record: keeping thousands of fresh objects alive costs
    page faults, and measured 8x the time of the serializing itself.
    """

    __slots__ = ("ends", "hashes", "ids", "lines", "projects", "slow_at", "slow_pending", "slow_rows")

    def __init__(self) -> None:
        self.lines = bytearray()
        self.ends: list[int] = []
        self.ids: list[str] = []
        self.projects: list[int | None] = []
        #: ``layout.key_hash`` of each of ``identities()``, computed here rather than on the writer thread.
        self.hashes: list[int] = []
        self.slow_rows: list[dict[str, Any]] = []
        self.slow_pending: list[dict[str, Any] | None] = []
        #: Where each slow record was in the append (the fast ones fill the other places, in order).
        self.slow_at: list[int] = []

    def __len__(self) -> int:
        return len(self.ids) + len(self.slow_rows)

    def identities(self) -> list[tuple[int | None, str]]:
        """``(project_id, event_id)`` of every record, fast lines first, then slow rows."""
        keys = list(zip(self.projects, self.ids, strict=True))
        keys += ((row.get("project_id"), row["event_id"]) for row in self.slow_rows)
        return keys

    def fast_lines(self, skip: set[int]) -> bytes:
        """The fast lines (newline-separated, no final newline), leaving out line numbers in ``skip``."""
        if not skip:
            return bytes(self.lines[:-1])
        kept = bytearray()
        start = 0
        for index, end in enumerate(self.ends):
            if index not in skip:
                kept += self.lines[start:end]
            start = end
        return bytes(kept[:-1])


def prepare(records: Sequence[Mapping[str, Any]], received_at: str, placements: Placements) -> Prepared:
    """Take ``records`` apart for the writer (see ``Prepared``)."""
    prepared = Prepared()
    fast = fast_types(placements)
    lines = prepared.lines
    dumps = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    for position, record in enumerate(records):
        stamp = record.get("timestamp")
        event_id = record.get("event_id")
        ok = type(stamp) is str and type(event_id) is str and _is_canonical(stamp)
        if ok:
            for name, value in record.items():
                allowed = fast.get(name)
                of = type(value)
                if allowed is None or of not in allowed or (
                    of is int and not _INT64_MIN <= value <= _INT64_MAX
                ):
                    ok = False
                    break
        if ok:
            received = record.get("received_at")
            pid = record.get("pid")
            project = record.get("project_id")
            ok = (
                (received is None or _is_canonical(received))
                and (type(pid) is not int or -_INT32 <= pid < _INT32)
                and (type(project) is not int or -_INT32 <= project < _INT32)
            )
        if ok:
            try:
                lines += dumps(record, option=newline)
            except orjson.JSONEncodeError:
                ok = False
            else:
                prepared.ends.append(len(lines))
                prepared.ids.append(event_id)  # type: ignore[arg-type]
                prepared.projects.append(project)
                continue
        row, pending = split(record, received_at, placements)
        prepared.slow_rows.append(row)
        prepared.slow_pending.append(pending)
        prepared.slow_at.append(position)
    prepared.hashes = [key_hash(project, event_id) for project, event_id in prepared.identities()]
    return prepared


def split(
    record: Mapping[str, Any], received_at: str, placements: Placements
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(row, pending)`` for one record, in one pass over its fields.

    ``row`` holds the common fields (converted to their column types; always ``timestamp``,
    ``received_at`` and ``event_id``: a missing or bad timestamp becomes ``received_at``, a missing id
    a new one) and every attribute whose promoted column takes its value as it is. ``pending`` holds
    the rest (cold keys, new keys, values of another type, unconvertible common fields): the writer
    settles them with the catalog (``place``). In a steady state ``pending`` is None for most records.
    This runs for every stored event, so the common cases are written out inline.
    """
    row: dict[str, Any] = {}
    pending: dict[str, Any] | None = None
    kinds = _KIND
    for name, value in record.items():
        kind = kinds.get(name)
        if kind is None:
            target = placements.get(name)
            if target is not None:
                of = type(value)
                if of in target[1] and (of is not int or _INT64_MIN <= value <= _INT64_MAX):
                    row[target[0]] = value
                    continue
            if value is None:
                continue
        else:
            of = type(value)
            if kind == "text":
                if of is str:
                    row[name] = value
                    continue
            elif kind == "timestamp":
                if of is str and _is_canonical(value):
                    row[name] = value
                    continue
            elif kind == "int":
                if of is int and -_INT32 <= value < _INT32:
                    row[name] = value
                    continue
            elif kind == "float" and (of is float or of is int):
                row[name] = value
                continue
            if value is None:
                continue
            converted = _convert(kind, value)
            if converted is not _INVALID:
                row[name] = converted
                continue
        if pending is None:
            pending = {}
        pending[name] = value
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


def json_lines(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Rows as newline-separated JSON (no final newline); integers past 64 bits become text.

    orjson escapes newlines inside strings, so a newline always ends a row.
    """
    lines = bytearray()
    for row in rows:
        try:
            lines += orjson.dumps(row, default=str, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:  # an integer orjson refuses
            lines += orjson.dumps(wide_ints_as_text(row), default=str, option=orjson.OPT_APPEND_NEWLINE)
    return bytes(lines[:-1])


def wide_ints_as_text(value: Any) -> Any:
    """``value`` with integers past 64 bits (orjson refuses them) as text, walking dicts and lists."""
    if type(value) is int and not _INT64_MIN <= value <= _INT64_MAX:
        return str(value)
    if isinstance(value, dict):
        return {str(k): wide_ints_as_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [wide_ints_as_text(v) for v in value]
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
