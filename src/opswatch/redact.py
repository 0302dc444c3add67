"""The redaction engine: secrets and PII are removed from a record once, before any sink sees it.

Three rules, applied in one recursive walk that copies (the caller's objects are never changed):

1. **Keys.** A key is split into words whatever its style (``accessToken``, ``x-api-key``, ``DB_PASSWORD``)
   and judged by its words: some words are secret wherever they stand (``password``, ``secret``,
   ``authorization``, ``cookie`` ...), others only as the last word (``token``, ``session``, ``auth``),
   so ``csrf_token`` is a secret and ``tokensUsed``, ``tokenizer``, ``session_count`` and ``author`` are not.
2. **Values.** Every string, at any depth, the message and exception messages included, is searched for
   secrets with a known shape: Luhn-valid card numbers, bearer tokens, JWTs, credentials in URLs, PEM
   private keys, Stripe/AWS/GitHub/Slack secrets, Slack webhook URLs, US SSNs; email addresses are
   masked. A first cheap pass (one combined pattern) rules out the common case of a string without any.
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

# -- keys --------------------------------------------------------------------------------------------

#: Words that make a key secret wherever they stand in it.
SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "secret", "secrets", "credential", "credentials",
        "authorization", "cookie", "cookies", "csrf", "xsrf", "csrftoken", "xsrftoken", "ssn", "cvv",
        "cvc", "cvv2", "apikey", "privatekey", "clientsecret", "accesstoken", "refreshtoken", "authtoken",
        "sessionid", "sessiontoken", "cardnumber", "ccnumber", "creditcard", "pin", "otp", "totp",
        "jwt", "bearer",
    }
)

#: Words that make a key secret only when they end it (``csrf_token`` yes, ``token_count`` no).
SECRET_LAST_WORDS = frozenset({"token", "session", "auth", "key"})

#: ``key`` alone (``sort_key``, ``idempotency_key``) is not a secret; it is after one of these words.
_KEY_QUALIFIERS = frozenset(
    {"api", "private", "secret", "access", "signing", "encryption", "master", "license", "client",
     "session", "auth", "ssh", "stripe", "x"}
)
_NOT_SECRET_LAST = {"key"}  # judged with its qualifier, see _key_is_secret

#: Two-word endings that are secret (``card_number``, ``session_id``, ``set_cookie``).
SECRET_PAIRS = frozenset(
    {("card", "number"), ("card", "num"), ("cc", "number"), ("session", "id"), ("set", "cookie"),
     ("social", "security"), ("security", "number"), ("account", "number"), ("routing", "number"),
     ("private", "key"), ("api", "key"), ("client", "secret")}
)

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def key_words(key: str) -> tuple[str, ...]:
    """Split a key into lower-case words: ``stripeSecretKey`` -> ``('stripe', 'secret', 'key')``."""
    return tuple(w.lower() for w in _WORD_SPLIT.split(key) if w)


def _key_is_secret(words: tuple[str, ...], extra: frozenset[str]) -> bool:
    if not words:
        return False
    for word in words:
        if word in SECRET_WORDS or word in extra:
            return True
    last = words[-1]
    if len(words) >= 2 and (words[-2], last) in SECRET_PAIRS:
        return True
    if last in SECRET_LAST_WORDS:
        if last in _NOT_SECRET_LAST:
            return len(words) >= 2 and words[-2] in _KEY_QUALIFIERS
        return True
    return False


# -- values ------------------------------------------------------------------------------------------

# Not glued to letters or digits: a digit run inside a hex id or a token is not a card number.
_CARD = r"(?<![\w-])(?:\d[ -]?){12,18}\d(?!\w)"
_PATTERNS: list[tuple[str, str]] = [
    ("pem", r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?:.*?-----END[A-Z ]*PRIVATE KEY-----|.*)"),
    ("slack_webhook", r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+"),
    ("url_credentials", r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s/:@]*):([^\s/@]+)@"),
    ("bearer", r"\b((?i:bearer|basic|token))\s+[A-Za-z0-9\-._~+/]{8,}=*"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    ("stripe", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}|\bwhsec_[A-Za-z0-9]{16,}"),
    ("aws", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b"),
    ("github", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{20,}"),
    ("slack_token", r"\bxox[abposre]-[A-Za-z0-9-]{8,}"),
    ("ssn", r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])"),
    ("card", _CARD),
    ("email", r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b"),
]
_COMPILED = {name: re.compile(pattern, re.DOTALL) for name, pattern in _PATTERNS}
# For text that is not ASCII: one combined pass; only when it matches are the patterns applied one by one.
_ANY = re.compile("|".join(f"(?:{p})" for _, p in _PATTERNS), re.DOTALL)

# For ASCII text, a cheaper first look than ``_ANY`` (which costs 3-7 µs on a unique 30-character id,
# because ``re`` retries every alternative at every position): plain substring tests for what each shape
# must contain. Each test is implied by the pattern it stands for, so nothing a pattern would catch gets past.
_LITERALS: Final = (
    "@",  # emails
    "://",  # URL credentials, Slack webhooks
    "PRIVATE KEY",
    "eyJ",  # JWTs
    "_live_", "_test_", "whsec_",  # Stripe
    "AKIA", "ASIA", "AGPA", "AIDA", "AROA",  # AWS
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_",  # GitHub
    "xox",  # Slack tokens
)
_WORDS: Final = ("bearer", "basic", "token")  # matched in any case
_DIGIT_RUN = re.compile(r"[0-9][0-9 -]{9,}[0-9]")  # SSNs are 11 such characters, card numbers 13 or more


def may_hold_secret(text: str) -> bool:
    """False only when no value pattern can match ``text`` (exact for ASCII; falls back to the patterns)."""
    if not text.isascii():
        return _ANY.search(text) is not None
    for literal in _LITERALS:
        if literal in text:
            return True
    lowered = text.lower()
    for word in _WORDS:
        if word in lowered:
            return True
    return _DIGIT_RUN.search(text) is not None


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only digits) passes the Luhn checksum used by payment cards."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card(text: str) -> bool:
    digits = text.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


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
        self._key_cache: dict[str, bool] = {}
        #: Keys that themselves hold a secret shape (an email used as a key ...), to their redacted form.
        self._key_names: dict[str, str] = {}
        self._str_cache: dict[str, str] = {}

    # -- public -----------------------------------------------------------------------------------

    def key_is_secret(self, key: str) -> bool:
        """Whether a field with this key is censored whatever its value."""
        verdict = self._key_cache.get(key)
        if verdict is None:
            verdict = _key_is_secret(key_words(key), self.extra_keys)
            if len(self._key_cache) >= self.cache_size:
                self._key_cache.clear()
                self._key_names.clear()
            self._key_cache[key] = verdict
            if self.enabled and may_hold_secret(key):
                scrubbed = self._scrub(key[: self.max_string])
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
        result = self._scrub(text) if may_hold_secret(text) else text
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
            if self.enabled and (value >= 10**12 or value <= -(10**12)) and _is_card(str(abs(value))):
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
                secret = key_cache.get(name)
                if secret is None:
                    secret = self.key_is_secret(name)
                if key_names and name in key_names:  # rare: a key shaped like a secret or an email
                    name = key_names[name]
                if secret and item is not None and kind is not bool:
                    if not self.remove:
                        out[name] = self.censor
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

    def _scrub(self, text: str) -> str:
        censor = self.censor
        for name, pattern in _COMPILED.items():
            if name == "email":
                if self.mask_emails:
                    text = pattern.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
            elif name == "card":
                text = pattern.sub(lambda m: censor if _is_card(m.group(0)) else m.group(0), text)
            elif name == "url_credentials":
                text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}:{censor}@", text)
            elif name == "bearer":
                text = pattern.sub(lambda m: f"{m.group(1)} {censor}", text)
            else:
                text = pattern.sub(censor, text)
        return text

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
