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


#: ``ServerRedactor._plan_key`` actions: copied as is; copied when it looks like an id; redacted.
_TRUST: Final = 0
_ID: Final = 1
_OTHER: Final = 2


def _is_flat(node: dict[Any, Any]) -> bool:
    """Whether a dict holds only texts, numbers, booleans and None (its walk has no containers to meet)."""
    return len(node) <= _limits.MAX_CONTAINER_ITEMS and all(
        value is None or type(value) in _SCALARS for value in node.values()
    )


_SCALARS: Final = frozenset({str, int, float, bool})


class ServerRedactor(Redactor):
    """The SDK's ``Redactor`` with a cheaper first look and a record-level entry point for ingest."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("cache_size", _KNOWN_SIZE)
        super().__init__(**options)
        #: Top-level record key to ``_plan_key``'s answer.
        self._record_keys: dict[str, tuple[int, int, str]] = {}

    def redact_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy of an ingested record (the fields ingest vouches for are copied as they are).

        Equivalent to ``redact`` on the rest of the record; never raises (a record the walk cannot handle
        becomes the SDK's marker in place of each offending field).
        """
        return self._record(record, {}) if self.enabled else dict(record)

    def redact_records(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``redact_record`` of each record; a flat dict the records share (the resource of a request's
        spans) is walked once for them all (see ``_attributes``)."""
        if not self.enabled:
            return [dict(record) for record in records]
        flat: dict[int, Any] = {}  # valid while ``records`` holds every input alive
        return [self._record(record, flat) for record in records]

    def _record(self, record: dict[str, Any], flat: dict[int, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        plans = self._record_keys
        str_cache = self._str_cache
        short = min(self.max_string, _limits.REDACTION_CACHE_MAX_STRING)
        for key, value in record.items():
            plan = plans.get(key)
            if plan is None:
                plan = self._plan_key(key)
            action, verdict, name = plan
            if action == _TRUST:
                out[key] = value
                continue
            kind = type(value)
            if kind is str:
                if action == _ID and _ID_LIKE.fullmatch(value):
                    out[key] = value
                    continue
                if not verdict:
                    # ``redact_text``, with its cache read inline (what it would answer for a short text)
                    cached = str_cache.get(value) if len(value) <= short else None
                    out[name] = cached if cached is not None else self.redact_text(value)
                    continue
            elif value is None or kind is bool:
                out[key] = value
                continue
            if verdict:
                if verdict == SECRET:
                    if not self.remove:
                        out[name] = self.censor
                else:
                    out[name] = self._field(self.card_field, value, 0)  # its value is walked at depth 1
            elif kind is float:
                out[name] = value
            elif (kind is list or kind is dict) and not value:  # a span's empty events, links ...
                out[name] = [] if kind is list else {}
            elif key == "error" and kind is dict:
                out[name] = self._error(value, 1)
            elif kind is dict and not self.paths:
                out[name] = self._attributes(value, flat)
            else:
                out[name] = self._field(self._walk, value, 1)
        if self.paths:
            for path in self.paths:
                self._apply_path(out, path)
        return out

    def _plan_key(self, key: str) -> tuple[int, int, str]:
        """How ``redact_record`` treats a top-level key: (trusted / id / other, its verdict, its name
        in the copy). The same answer every time for a key, so it is remembered."""
        verdict = self.key_verdict(key)
        plan = (
            _TRUST if key in _TRUSTED else _ID if key in _ID_FIELDS else _OTHER,
            verdict,
            self._key_names.get(key, key),  # rare: a key shaped like a secret or an email
        )
        if len(self._record_keys) >= self.cache_size:
            self._record_keys.clear()
        self._record_keys[key] = plan
        return plan

    def _attributes(self, value: dict[str, Any], flat: dict[int, Any]) -> Any:
        """A top-level dict (a span's ``attributes``) as ``_walk`` makes it at depth 1, except that a flat
        dict nested in it (texts, numbers ...: an OTLP resource, shared by the spans of a request) is
        redacted once per batch of records: ``flat`` remembers the result by the id of the (live) input
        dict, and a flat dict's result does not depend on where it sits (no cycles, no depth limit at
        depth 2)."""
        if len(value) > _limits.MAX_CONTAINER_ITEMS or self.max_depth <= 2:
            return self._field(self._walk, value, 1)
        try:
            return self._flat_mapping(value, flat)
        except Exception as err:  # as ``_field``: a marker instead of the value
            return f"[unredactable: {type(err).__name__}]"

    def _flat_mapping(self, value: dict[str, Any], flat: dict[int, Any]) -> dict[str, Any]:
        # ``Redactor._walk_mapping`` at depth 1, line for line, but for the memo of flat nested dicts
        out: dict[str, Any] = {}
        seen = {id(value)}
        plans = self._record_keys  # a key's verdict and name are those ``_walk_mapping`` works out
        str_cache = self._str_cache
        for key, item in value.items():
            kind = type(item)
            plan = plans.get(key) if type(key) is str else None
            if plan is None:
                plan = self._plan_key(key if type(key) is str else str(key))
            verdict = plan[1]
            name = plan[2]
            if verdict and item is not None and kind is not bool:
                if verdict == SECRET:
                    if not self.remove:
                        out[name] = self.censor
                else:
                    out[name] = self.card_field(item, 1, seen)
                continue
            if kind is str:
                cached = str_cache.get(item)
                out[name] = cached if cached is not None else self.redact_text(item)
            elif kind is float or kind is bool or item is None or (kind is int and -(10**12) < item < 10**12):
                out[name] = item
            elif kind is dict:
                known = flat.get(id(item))
                if known is None:
                    known = self._walk(item, 2, seen)
                    if _is_flat(item):
                        flat[id(item)] = known
                out[name] = dict(known) if type(known) is dict else known
            else:
                out[name] = self._walk(item, 2, seen)
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
