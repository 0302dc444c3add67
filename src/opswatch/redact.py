"""The redaction engine: secrets and PII are removed from a record once, before any sink sees it.

Three rules, applied in one recursive walk that copies (the caller's objects are never changed):

1. **Keys** (``opswatch._redact_keys``). A key is split into words whatever its style (``accessToken``,
   ``x-api-key``, ``DB_PASSWORD``, ``csrfmiddlewaretoken``) and judged by its words; the value under a
   secret key is censored whole. Under a key that says *card* (``card``, ``pan``, ``cc``) a card-number-like
   value is censored even when its issuer is unknown.
2. **Values** (``opswatch._redact_patterns``). Every string, at any depth, the message and exception
   messages included, is searched for secrets with a known shape (provider tokens, credentials in URLs,
   headers and ``key=value`` text, card numbers, SSNs, IBANs ...; phones and IPs when asked) and email
   addresses are masked. Each group of shapes has a cheap gate, so ordinary text pays little.
3. **Paths** from settings, pino style (``user.address``, ``*.ssn``, ``items[*].secret``), censored or
   removed.

The walk also makes every value serializable: objects become what they serialize as (dataclasses and
pydantic models to dicts, sets to lists, others to a marked ``repr``), circular references and excessive
depth become markers, and long strings are cut. Verdicts for keys and short strings are cached, because
logs repeat the same keys and messages.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import itertools
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from . import _limits
from ._redact_keys import SECRET, SECRET_LAST_WORDS, SECRET_PAIRS, SECRET_WORDS, judge_words, key_words
from ._redact_numbers import is_card_number, luhn_valid
from ._redact_patterns import Shapes

__all__ = [
    "SECRET_LAST_WORDS",
    "SECRET_PAIRS",
    "SECRET_WORDS",
    "Redactor",
    "is_card_number",
    "key_words",
    "luhn_valid",
    "may_hold_secret",
    "parse_path",
]

_DEFAULT_SHAPES: Final = Shapes()


def may_hold_secret(text: str) -> bool:
    """False only when no value rule (with the default settings) can change ``text``."""
    return _DEFAULT_SHAPES.may_match(text)


# -- paths -------------------------------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"\[(\*|\d+|\"[^\"]*\"|'[^']*')\]|([^.\[\]]+)")


def parse_path(path: str) -> tuple[str, ...]:
    """Parse a pino-style path: ``items[*].secret`` -> ``('items', '*', 'secret')``.

    Raises ``ValueError`` for an empty or malformed path.
    """
    if not path or path.startswith(".") or path.endswith(".") or ".." in path:
        raise ValueError(f"bad redaction path {path!r}")
    parts: list[str] = []
    position = 0
    for match in _PATH_TOKEN.finditer(path):
        gap = path[position:match.start()]
        if gap not in ("", "."):
            raise ValueError(f"bad redaction path {path!r}")
        bracket, name = match.groups()
        parts.append(bracket.strip("\"'") if bracket is not None else name)
        position = match.end()
    if position != len(path) or not parts:
        raise ValueError(f"bad redaction path {path!r}")
    return tuple(parts)


class _Circular:
    """Sentinel for the walk's cycle check."""


class Redactor:
    """Redacts records. Build one per settings; call ``redact(value)`` on the user part of a record.

    ``redact`` returns a new structure; it never raises for any input (bad objects become markers).
    ``redact_phones`` and ``redact_ips`` add phone numbers and IP addresses to the shapes censored in text
    (the settings of the same names; off by default).
    """

    def __init__(
        self,
        *,
        censor: str = "[REDACTED]",
        mask_emails: bool = True,
        extra_keys: Iterable[str] = (),
        paths: Iterable[str] = (),
        mode: str = "censor",
        enabled: bool = True,
        redact_phones: bool = False,
        redact_ips: bool = False,
        max_string: int = _limits.MAX_STRING_LENGTH,
        max_depth: int = _limits.MAX_DEPTH,
        cache_size: int = _limits.REDACTION_CACHE_SIZE,
    ) -> None:
        self.censor = censor
        self.mask_emails = mask_emails
        self.enabled = enabled
        self.extra_keys = frozenset(w.lower() for k in extra_keys for w in (k, *key_words(k)))
        self.paths = tuple(parse_path(p) for p in paths)
        self.remove = mode == "remove"
        self.max_string = max_string
        self.max_depth = max_depth
        self.cache_size = cache_size
        self.shapes = Shapes(
            censor=censor,
            mask_emails=mask_emails,
            extra_words=self.extra_keys,
            phones=redact_phones,
            ips=redact_ips,
        )
        #: Key to verdict (``_redact_keys.PLAIN``, ``SECRET`` or ``CARD``).
        self._key_cache: dict[str, int] = {}
        #: Keys that themselves hold a secret shape (an email used as a key ...), to their redacted form.
        self._key_names: dict[str, str] = {}
        self._str_cache: dict[str, str] = {}

    # -- public -----------------------------------------------------------------------------------

    def key_is_secret(self, key: str) -> bool:
        """Whether a field with this key is censored whatever its value."""
        return self.key_verdict(key) == SECRET

    def key_verdict(self, key: str) -> int:
        """``PLAIN``, ``SECRET`` (the value is censored) or ``CARD`` (card-number-like values are)."""
        verdict = self._key_cache.get(key)
        if verdict is None:
            verdict = judge_words(key_words(key), self.extra_keys)
            if len(self._key_cache) >= self.cache_size:
                self._key_cache.clear()
                self._key_names.clear()
            self._key_cache[key] = verdict
            if self.enabled:
                scrubbed = self.shapes.scrub(key[: self.max_string])
                if scrubbed != key:
                    self._key_names[key] = scrubbed
        return verdict

    def redact_text(self, text: str) -> str:
        """Return ``text`` with every secret shape replaced and emails masked; long text is cut."""
        if len(text) > self.max_string:
            text = text[: self.max_string] + _limits.TRUNCATION_MARKER
        if not self.enabled:
            return text
        short = len(text) <= _limits.REDACTION_CACHE_MAX_STRING
        if short:
            cached = self._str_cache.get(text)
            if cached is not None:
                return cached
        result = self.shapes.scrub(text)
        if short:
            if len(self._str_cache) >= self.cache_size:
                self._str_cache.clear()
            self._str_cache[text] = result
        return result

    def redact(self, value: Any) -> Any:
        """Return a redacted, serializable copy of ``value`` (a record's user part, usually a dict)."""
        try:
            result = self._walk(value, 0, set())
        except Exception as err:  # never raise into the caller: keep a marker instead of the value
            result = self._salvage(value, err)
        try:
            if self.paths and isinstance(result, dict):
                for path in self.paths:
                    self._apply_path(result, path)
        except Exception as err:
            result = _marker(err) if not isinstance(value, Mapping) else {"…": _marker(err)}
        return result

    def _salvage(self, value: Any, err: Exception) -> Any:
        """After a failed walk: a mapping stays a mapping, each field that cannot be walked a marker."""
        if not isinstance(value, Mapping):
            return _marker(err)
        try:
            items = list(value.items())
        except Exception as items_err:
            return {"…": _marker(items_err)}
        out: dict[str, Any] = {}
        for key, item in items:
            try:
                out.update(self._walk({key: item}, 0, set()))
            except Exception as item_err:
                try:
                    name = self._walk({key: None}, 0, set())  # the key alone, redacted like any key
                except Exception:
                    continue  # a key that cannot even be printed is left out
                out.update(dict.fromkeys(name, _marker(item_err)))
        return out

    # -- the walk ---------------------------------------------------------------------------------

    def _walk(self, value: Any, depth: int, seen: set[int]) -> Any:
        kind = type(value)
        if kind is str:
            return self.redact_text(value)
        if kind is int:
            if self.enabled and (value >= 10**12 or value <= -(10**12)) and is_card_number(str(abs(value))):
                return self.censor
            return value
        if kind is float or kind is bool or value is None:
            return value
        if depth >= self.max_depth:
            return "[depth limit]"
        if kind is dict or isinstance(value, Mapping):
            return self._walk_mapping(value, depth, seen)
        if kind is list or kind is tuple or isinstance(value, (list, tuple, set, frozenset)):
            marker = id(value)
            if marker in seen:
                return "[circular]"
            seen.add(marker)
            items = list(value)
            if isinstance(value, (set, frozenset)):
                items = sorted(items, key=repr)
            out_list = [self._walk(item, depth + 1, seen) for item in items[: _limits.MAX_CONTAINER_ITEMS]]
            if len(items) > _limits.MAX_CONTAINER_ITEMS:
                out_list.append(f"[{len(items) - _limits.MAX_CONTAINER_ITEMS} more items]")
            seen.discard(marker)
            return out_list
        return self._walk(_plain(value), depth + 1, seen)

    def _walk_mapping(self, value: Mapping[Any, Any], depth: int, seen: set[int]) -> Any:
        # The hot loop of every logging call: primitives and cached verdicts are handled inline.
        marker = id(value)
        if marker in seen:
            return "[circular]"
        seen.add(marker)
        out: dict[str, Any] = {}
        items: Iterable[tuple[Any, Any]] = value.items()
        overflow = len(value) - _limits.MAX_CONTAINER_ITEMS
        if overflow > 0:
            items = itertools.islice(items, _limits.MAX_CONTAINER_ITEMS)
        enabled = self.enabled
        key_cache = self._key_cache
        key_names = self._key_names
        str_cache = self._str_cache
        for key, item in items:
            name = key if type(key) is str else str(key)
            kind = type(item)
            if enabled:
                verdict = key_cache.get(name)
                if verdict is None:
                    verdict = self.key_verdict(name)
                if key_names and name in key_names:  # rare: a key shaped like a secret or an email
                    name = key_names[name]
                if verdict and item is not None and kind is not bool:
                    if verdict == SECRET:
                        if not self.remove:
                            out[name] = self.censor
                    else:
                        out[name] = self.card_field(item, depth, seen)
                    continue
            if kind is str:
                cached = str_cache.get(item)
                out[name] = cached if cached is not None else self.redact_text(item)
            elif kind is float or kind is bool or item is None or (kind is int and -(10**12) < item < 10**12):
                out[name] = item
            else:
                out[name] = self._walk(item, depth + 1, seen)
        if overflow > 0:
            out["…"] = f"[{overflow} more keys]"
        seen.discard(marker)
        return out

    def card_field(self, value: Any, depth: int, seen: set[int]) -> Any:
        """The value under a card key: a 12-19 digit number is censored whoever issued it."""
        kind = type(value)
        if kind is int:
            return self.censor if 10**11 <= abs(value) < 10**19 else value
        if kind is str:
            return self.shapes.scrub_card_field(self.redact_text(value))
        return self._walk(value, depth + 1, seen)

    def _apply_path(self, node: Any, path: tuple[str, ...]) -> None:
        head, rest = path[0], path[1:]
        if isinstance(node, dict):
            keys = list(node) if head == "*" else ([head] if head in node else [])
            for key in keys:
                if rest:
                    self._apply_path(node[key], rest)
                elif self.remove:
                    del node[key]
                else:
                    node[key] = self.censor
        elif isinstance(node, list):
            if head == "*":
                indexes = range(len(node))
            elif head.isdigit() and int(head) < len(node):
                indexes = range(int(head), int(head) + 1)
            else:
                return
            for index in indexes:
                if rest:
                    self._apply_path(node[index], rest)
                else:
                    node[index] = self.censor


def _marker(err: BaseException) -> str:
    return f"[unredactable: {type(err).__name__}]"


def _plain(value: Any) -> Any:
    """What an object serializes as: a dict, list, string or number the walk can continue on."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return f"<bytes len={len(raw)}>"
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    dump: Callable[..., Any] | None = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:
            pass
    for primitive in (bool, int, float, str):  # subclasses of the primitives become the primitive
        if isinstance(value, primitive):
            return primitive(value)
    try:
        text = repr(value)
    except Exception:
        text = "?"
    return f"<unserializable {type(value).__name__}: {text}>"
