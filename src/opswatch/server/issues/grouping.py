"""Grouping: which issue an error record belongs to. Pure functions, no I/O.

``group(record)`` returns a ``Grouping``: a hash (the issue's key within a project) plus the metadata an
issue shows (title, culprit, type, the components that were hashed and the method that chose them).

The method, first that applies:

1. ``fingerprint``: the record's explicit ``fingerprint`` (a list of strings, or one string). The item
   ``{{ default }}`` expands to the components of the default grouping below, so
   ``["{{ default }}", "tenant-a"]`` splits a default group by tenant; ``["{{ default }}"]`` alone is the
   default. ``{{ type }}``, ``{{ message }}``, ``{{ operation }}``, ``{{ logger }}`` and ``{{ level }}``
   expand too.
2. ``stack``: the exception type plus its in-app frames (module and function; no line numbers, no memory
   addresses, no generated lambda suffixes, direct recursion collapsed), for every exception of the
   chain (the raised one first, then its causes).
3. ``exception``: when no exception of the chain has an in-app frame, the type plus the message with
   its variable parts replaced (numbers, ids, uuids, hex, emails, quoted strings, IPs, timestamps).
4. ``message``: no exception at all: the record's message, parameterized the same way.

So ``Payment failed for donation 123`` and ``Payment failed for donation 456`` are one issue, and two
exception types raised at one line are two. Every hash includes ``GROUPING_VERSION``; an issue stores the
version it was created with, so the algorithm can change later without regrouping history: a new version
keeps the old one in ``PREVIOUS_VERSIONS`` for a while and the service links a new hash to the issue the
old hash found.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

#: The version of the algorithm below. Bump it when a change would move events to other issues.
GROUPING_VERSION: Final = 1

#: Titles longer than this are cut (with an ellipsis).
MAX_TITLE_LENGTH: Final = 200
#: Fingerprint items, components and messages are cut at this many characters before hashing.
MAX_COMPONENT_LENGTH: Final = 1_000
#: Exceptions of a chain looked at (the serializer keeps 10).
MAX_CHAIN: Final = 10


@dataclasses.dataclass(frozen=True)
class Grouping:
    """Where a record goes: ``hash`` is the key; the rest describes the issue it starts."""

    hash: str
    version: int
    method: str  # fingerprint | stack | exception | message
    components: tuple[str, ...]
    title: str
    culprit: str
    error_type: str | None
    message: str

    def metadata(self) -> dict[str, Any]:
        """The grouping facts as a JSON-able dict (stored with the issue, shown by ``issues show``)."""
        return {"version": self.version, "method": self.method, "components": list(self.components)}


# -- parameterization ------------------------------------------------------------------------------------

_ID_TOKEN = re.compile(r"(?<![\w-])([A-Za-z][A-Za-z0-9]{0,11}[_-])?([A-Za-z0-9_-]*\d[A-Za-z0-9_-]*)(?![\w-])")

#: Ordered: earlier patterns see the text first, so a uuid is not eaten by the hex or number rule.
_PARAMETERS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"[^\s@'\"<>(),;:]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"), "<email>"),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
        ),
        "<date>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (
        re.compile(r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"),
        "<uuid>",
    ),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b"), "<ip>"),
    (
        re.compile(
            r"(?<![\w:])(?=[0-9a-fA-F:]*[0-9a-fA-F])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])"
        ),
        "<ip>",
    ),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"'[^'\n]{0,200}'|\"[^\"\n]{0,200}\"|`[^`\n]{0,200}`"), "<str>"),
)
_NUMBER = re.compile(r"(?<![A-Za-z0-9<])[-+]?\d+(?:[.,]\d+)*")


def _replace_id(match: re.Match[str]) -> str:
    prefix, body = match.group(1) or "", match.group(2)
    token = prefix + body
    digits = sum(ch.isdigit() for ch in token)
    letters = sum(ch.isalpha() for ch in body)
    # Ids mix letters and digits (``ch_3MmlLrLkdIwHu7ix``, ``user42abc``); short words such as ``utf8``
    # or ``ipv4`` stay. A leading word like ``cus_`` names the kind of id, so it is kept.
    if len(token) >= 8 and digits >= 2 and letters >= 1:
        return f"{prefix}<id>"
    return token


def parameterize(text: str) -> str:
    """Replace the variable parts of a message with placeholders: ``<num>``, ``<id>``, ``<uuid>``,
    ``<hex>``, ``<email>``, ``<str>``, ``<ip>``, ``<date>``, ``<time>``. Deterministic; never raises.
    """
    text = text[:MAX_COMPONENT_LENGTH]
    for pattern, placeholder in _PARAMETERS:
        text = pattern.sub(placeholder, text)
    text = _ID_TOKEN.sub(_replace_id, text)
    return _NUMBER.sub("<num>", text)


# -- frames ----------------------------------------------------------------------------------------------

_LIBRARY_PATH = re.compile(
    r"(?:site-packages|dist-packages|node_modules|/lib/python\d|\\lib\\python\d|^<frozen|^<string>$)"
)
_ADDRESS = re.compile(r"\s*(?:at\s+)?0[xX][0-9a-fA-F]+")
_GENERATED = (
    (re.compile(r"\$\$Lambda\$.*"), "$$Lambda$"),  # JVM: Foo$$Lambda$123/0x0000000800c1840
    (re.compile(r"lambda\$([\w]+)\$\d+"), r"lambda$\1$"),  # JVM: lambda$run$0
    (re.compile(r"\$\d+"), "$"),  # anonymous classes and closures: Foo$1, access$000
    (re.compile(r"<lambda_\d+>"), "<lambda>"),
    (re.compile(r"\b[0-9a-fA-F]{8,}\b"), "<hex>"),
)
_FILE_HASH = re.compile(r"[.-](?=[0-9a-fA-F]*\d)[0-9a-fA-F]{6,}(?=\.)")
_ASYNC_PREFIX = re.compile(r"^(?:async\s+|new\s+|Object\.)")


def _normalize_symbol(value: str) -> str:
    value = _ADDRESS.sub("", value)
    for pattern, replacement in _GENERATED:
        value = pattern.sub(replacement, value)
    return value.strip()


def _frame_key(frame: Mapping[str, Any]) -> str:
    """``module:function`` of a frame, normalized so that a redeploy or a rebuild keeps the key."""
    module = frame.get("module")
    function = frame.get("function")
    if isinstance(module, str) and module:
        return _symbols(module, function if isinstance(function, str) else "?", "")
    filename = frame.get("file") or frame.get("filename") or frame.get("abs_path") or "?"
    return _symbols("", function if isinstance(function, str) else "?", str(filename))


@functools.lru_cache(maxsize=16_384)
def _symbols(module: str, function: str, filename: str) -> str:
    # Cached: the same frames recur in every event of an issue, and the regexes cost ~5 µs per frame.
    if not module:
        filename = filename.split("?", 1)[0].split("#", 1)[0].replace("\\", "/").rsplit("/", 1)[-1]
        module = _FILE_HASH.sub("", filename)
    return f"{_normalize_symbol(module)}:{_ASYNC_PREFIX.sub('', _normalize_symbol(function or '?'))}"


def is_in_app(frame: Mapping[str, Any]) -> bool:
    """An explicit ``in_app`` wins; when it is missing (common in Sentry events), library paths are not."""
    flag = frame.get("in_app")
    if isinstance(flag, bool):
        return flag
    path = str(frame.get("file") or frame.get("filename") or frame.get("abs_path") or "")
    return bool(path) and not _LIBRARY_PATH.search(path)


def _frames(error: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    stack = error.get("stack")
    if not isinstance(stack, Sequence) or isinstance(stack, str | bytes):
        return []
    return [frame for frame in stack if isinstance(frame, Mapping)]


def _in_app_keys(error: Mapping[str, Any]) -> list[str]:
    keys: list[str] = []
    for frame in _frames(error):
        if is_in_app(frame):
            key = _frame_key(frame)
            if not keys or keys[-1] != key:  # direct recursion: depth must not split an issue
                keys.append(key)
    return keys


def chain(error: Mapping[str, Any] | None) -> Iterator[Mapping[str, Any]]:
    """The raised exception, then its cause, its cause's cause ... (bounded)."""
    current: Any = error
    depth = 0
    while isinstance(current, Mapping) and depth < MAX_CHAIN:
        yield current
        current = current.get("cause")
        depth += 1


def culprit_of(error: Mapping[str, Any] | None) -> str | None:
    """``module in function`` of the raised exception's innermost in-app frame, or ``None``."""
    if not isinstance(error, Mapping):
        return None
    for frame in reversed(_frames(error)):
        if is_in_app(frame):
            module = frame.get("module") or frame.get("file") or "?"
            return f"{module} in {frame.get('function') or '?'}"
    return None


# -- the strategies --------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):  # Sentry logentry shapes that slipped through ingest
        for key in ("formatted", "message"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return "" if value is None else str(value)


def _error_of(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    error = record.get("error")
    return error if isinstance(error, Mapping) and (error.get("type") or _frames(error)) else None


def _record_message(record: Mapping[str, Any]) -> str:
    template = record.get("message_template")
    return _text(template) if isinstance(template, str) and template else _text(record.get("message"))


def default_components(record: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The default method and its components (methods 2-4 of the module docstring)."""
    error = _error_of(record)
    if error is not None:
        exceptions = list(chain(error))
        frames = [_in_app_keys(exc) for exc in exceptions]
        if any(frames):
            parts: list[str] = []
            for exc, keys in zip(exceptions, frames, strict=True):
                parts.append(f"type:{_text(exc.get('type'))}")
                parts.extend(f"frame:{key}" for key in keys)
            return "stack", tuple(parts)
        parts = []
        for exc in exceptions:
            parts.append(f"type:{_text(exc.get('type'))}")
            parts.append(f"value:{parameterize(_text(exc.get('message')))}")
        return "exception", tuple(parts)
    return "message", (f"message:{parameterize(_record_message(record))}",)


_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _fingerprint(record: Mapping[str, Any]) -> list[str] | None:
    value = record.get("fingerprint")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value:
        return None
    items = [_text(item)[:MAX_COMPONENT_LENGTH] for item in value]
    if len(items) == 1 and (match := _VARIABLE.fullmatch(items[0].strip())) and match.group(1) == "default":
        return None  # ["{{ default }}"] is the default grouping itself
    return items


def _expand(item: str, record: Mapping[str, Any], default: Callable[[], tuple[str, ...]]) -> list[str]:
    match = _VARIABLE.fullmatch(item.strip())
    if match is None:
        return [f"fingerprint:{item}"]
    name = match.group(1).lower()
    error = _error_of(record)
    if name == "default":
        return list(default())
    if name == "type":
        return [f"type:{_text(error.get('type')) if error else ''}"]
    if name == "message":
        text = _text(error.get("message")) if error else _record_message(record)
        return [f"value:{parameterize(text)}"]
    if name in ("operation", "logger", "level", "transaction"):
        return [f"{name}:{_text(record.get(name))}"]
    return [f"fingerprint:{item}"]  # an unknown variable is literal text, as Sentry treats it


def _hash(version: int, components: Sequence[str]) -> str:
    digest = hashlib.sha256(f"opswatch-grouping:{version}".encode())
    for part in components:
        digest.update(b"\x1e")
        digest.update(part.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def title_of(record: Mapping[str, Any]) -> str:
    """``Type: first line`` for an exception (short type name), else the message's first line."""
    error = _error_of(record)
    if error is not None and error.get("type"):
        short = _text(error.get("type")).rsplit(".", 1)[-1]
        first = _text(error.get("message")).strip().splitlines()
        title = f"{short}: {first[0]}" if first else short
    else:
        lines = _text(record.get("message")).strip().splitlines()
        title = lines[0] if lines else "(no message)"
    return title if len(title) <= MAX_TITLE_LENGTH else title[: MAX_TITLE_LENGTH - 1] + "…"


def group(record: Mapping[str, Any]) -> Grouping:
    """Group one error record (see the module docstring). Never raises on odd shapes."""
    error = _error_of(record)
    computed: list[tuple[str, tuple[str, ...]]] = []

    def default() -> tuple[str, ...]:
        if not computed:
            computed.append(default_components(record))
        return computed[0][1]

    items = _fingerprint(record)
    if items is not None:
        method = "fingerprint"
        components: tuple[str, ...] = tuple(part for item in items for part in _expand(item, record, default))
    else:
        default()
        method, components = computed[0]
    culprit = culprit_of(error) or _text(record.get("operation")) or _text(record.get("logger"))
    return Grouping(
        hash=_hash(GROUPING_VERSION, components),
        version=GROUPING_VERSION,
        method=method,
        components=components,
        title=title_of(record),
        culprit=culprit,
        error_type=(_text(error.get("type")) or None) if error is not None else None,
        message=_text(error.get("message")) if error is not None else _text(record.get("message")),
    )


#: Earlier algorithms still consulted when a new hash finds no issue, newest first: version -> function.
#: Empty while version 1 is the only one.
PREVIOUS_VERSIONS: Final[dict[int, Callable[[Mapping[str, Any]], Grouping]]] = {}
