"""Redaction on arrival: the SDK's rules (``opswatch.redact.Redactor``), made cheap enough for ingest.

The server redacts every record it stores, whatever sent it, with the SDK's ``Redactor`` and its rules
unchanged. Two things make that affordable at tens of thousands of records per second:

* **A larger cache.** The SDK's ``Redactor`` already rules out most strings with cheap gates (substring
  tests, one short pattern; ``opswatch._redact_patterns``); the server remembers many more verdicts than
  an app does.
* **No walk over what the server itself wrote.** ``event_id``, ``timestamp``, ``level``, ``kind`` and
  ``received_at`` were checked or produced by ingest; they are copied, not searched. ``trace_id``,
  ``span_id`` and ``check_in_id`` are copied when they look like ids (hex, dashes), searched otherwise.
  (They must be: a 32-hex id can hold a Luhn-valid run of 13 digits, and censoring an id breaks
  idempotency.)

The results for short strings are remembered, because log fields repeat.
"""

from __future__ import annotations

import re
from typing import Any, Final

from .. import _limits
from .._redact_keys import PLAIN, SECRET
from ..redact import Redactor

#: Fields ingest has validated or produced; never searched for secrets.
_TRUSTED: Final = frozenset({"event_id", "timestamp", "level", "kind", "received_at", "project_id"})
#: Id fields copied as they are when they look like ids.
_ID_FIELDS: Final = frozenset({"trace_id", "span_id", "parent_span_id", "check_in_id"})
_ID_LIKE = re.compile(r"[0-9a-fA-F-]{1,64}")

#: The keys of a frame in a record's ``error.stack`` (the SDK's and the Sentry mapping's); none is secret.
_FRAME_KEYS: Final = frozenset({"file", "line", "function", "module", "in_app", "column", "context_line"})

#: Keys and short strings whose result is remembered (log fields repeat: messages, releases, emails ...).
_KNOWN_SIZE: Final = 50_000


class ServerRedactor(Redactor):
    """The SDK's ``Redactor`` with a cheaper first look and a record-level entry point for ingest."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("cache_size", _KNOWN_SIZE)
        super().__init__(**options)

    def redact_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy of an ingested record (the fields ingest vouches for are copied as they are).

        Equivalent to ``redact`` on the rest of the record; never raises (a record the walk cannot handle
        becomes the SDK's marker in place of each offending field).
        """
        if not self.enabled:
            return dict(record)
        out: dict[str, Any] = {}
        censor = self.censor
        remove = self.remove
        key_cache = self._key_cache
        redact_text = self.redact_text
        for key, value in record.items():
            if key in _TRUSTED:
                out[key] = value
                continue
            kind = type(value)
            if key in _ID_FIELDS and kind is str and _ID_LIKE.fullmatch(value):
                out[key] = value
                continue
            if value is None or kind is bool:
                out[key] = value
                continue
            verdict = key_cache.get(key)
            if verdict is None:
                verdict = self.key_verdict(key)
            if self._key_names and key in self._key_names:  # rare: a key shaped like a secret or an email
                key = self._key_names[key]
            if verdict:
                if verdict == SECRET:
                    if not remove:
                        out[key] = censor
                else:
                    out[key] = self._field(self.card_field, value, 0)  # its value is walked at depth 1
                continue
            if kind is str:
                out[key] = redact_text(value)
            elif kind is float:
                out[key] = value
            elif (kind is list or kind is dict) and not value:  # a span's empty events, links ...
                out[key] = [] if kind is list else {}
            elif key == "error" and kind is dict:
                out[key] = self._error(value, 1)
            else:
                out[key] = self._field(self._walk, value, 1)
        if self.paths:
            for path in self.paths:
                self._apply_path(out, path)
        return out

    @staticmethod
    def _field(walk: Any, value: Any, depth: int) -> Any:
        try:
            return walk(value, depth, set())
        except Exception as err:  # the SDK's behaviour: a marker instead of the value
            return f"[unredactable: {type(err).__name__}]"

    # -- the error shape, walked without the generic walk's per-node cost -------------------------
    # Same result as ``_walk`` (same depth markers, same censoring); it only knows that frames are flat
    # dicts whose keys are never secret, so their strings go straight to ``redact_text``.

    def _error(self, node: Any, depth: int) -> Any:
        if type(node) is not dict or depth >= self.max_depth or len(node) > _limits.MAX_CONTAINER_ITEMS:
            return self._walk(node, depth, set())
        out: dict[str, Any] = {}
        for key, value in node.items():
            kind = type(value)
            if key == "stack" and kind is list:
                out[key] = self._stack(value, depth + 1)
            elif key == "cause" and kind is dict:
                out[key] = self._error(value, depth + 1)
            elif kind is str and self.key_verdict(key) == PLAIN:
                out[key] = self.redact_text(value)
            else:
                single = self._walk({key: value}, depth, set())
                if key in single:
                    out[key] = single[key]
        return out

    def _stack(self, frames: list[Any], depth: int) -> Any:
        if depth >= self.max_depth or len(frames) > _limits.MAX_CONTAINER_ITEMS:
            return self._walk(frames, depth, set())
        frame_depth = depth + 1
        out: list[Any] = []
        redact_text = self.redact_text
        for frame in frames:
            if type(frame) is not dict or frame_depth >= self.max_depth or not frame.keys() <= _FRAME_KEYS:
                out.append(self._walk(frame, frame_depth, set()))
                continue
            clean: dict[str, Any] = {}
            for key, value in frame.items():
                kind = type(value)
                if kind is str:
                    clean[key] = redact_text(value)
                elif value is None or kind is bool or (kind is int and -(10**12) < value < 10**12):
                    clean[key] = value
                else:
                    clean[key] = self._walk(value, frame_depth + 1, set())
            out.append(clean)
        return out
