"""Silences: matchers on the rule and labels, between a start and an end, with an author and a comment.

A matcher is ``{"name": "service", "value": "checkout"}`` (equality) or with ``"regex": true`` (the
whole label value must match, as Alertmanager's ``=~``); ``name`` may be ``rule``. A silence mutes a
notification whose labels match every matcher while ``starts_at <= now < ends_at``; the dispatcher
records the muted notification with the silence's id instead of sending it. Expiring a silence sets its
end to now; a rule still firing is then announced (``notify.follow_up``; for the notice rules,
whose outboxes send their messages, ``outbox_release``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Engine, and_, insert, select, update

from ..state.rules import SILENCES

MAX_MATCHERS: Final = 20
_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


class SilenceError(ValueError):
    """A silence is not valid; the message names the field."""


class UnknownSilence(LookupError):
    """No silence has that id."""


@dataclasses.dataclass(frozen=True)
class Matcher:
    """One label condition."""

    name: str
    value: str
    regex: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher (a missing label is the empty string)."""
        actual = labels.get(self.name, "")
        if self.regex:
            return re.fullmatch(self.value, actual) is not None
        return actual == self.value

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "regex": self.regex}


@dataclasses.dataclass(frozen=True)
class Silence:
    """A stored silence."""

    id: int
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    author: str
    comment: str
    created_at: float

    def active(self, now: float) -> bool:
        """Whether the silence mutes at ``now``."""
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher matches ``labels``."""
        return all(matcher.matches(labels) for matcher in self.matchers)

    def as_dict(self, now: float) -> dict[str, Any]:
        state = "active" if self.active(now) else ("pending" if now < self.starts_at else "expired")
        return {
            "id": self.id,
            "matchers": [m.as_dict() for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "author": self.author,
            "comment": self.comment,
            "created_at": self.created_at,
            "state": state,
        }


def parse_matchers(data: Any) -> tuple[Matcher, ...]:
    """Matchers from a list of ``{"name", "value", "regex"}`` objects; ``SilenceError`` naming the problem."""
    if not isinstance(data, Sequence) or isinstance(data, str) or not data:
        raise SilenceError("matchers: expected a non-empty list of {name, value, regex} objects")
    if len(data) > MAX_MATCHERS:
        raise SilenceError(f"matchers: at most {MAX_MATCHERS}")
    found = []
    for index, item in enumerate(data):
        where = f"matchers[{index}]"
        if not isinstance(item, Mapping) or set(item) - {"name", "value", "regex"}:
            raise SilenceError(f"{where}: expected an object with name, value and optionally regex")
        name, value, regex = item.get("name"), item.get("value"), item.get("regex", False)
        if not isinstance(name, str) or not _NAME.match(name):
            raise SilenceError(f"{where}.name: expected a label name, got {name!r}")
        if not isinstance(value, str) or not isinstance(regex, bool):
            raise SilenceError(f"{where}: value must be text and regex true or false")
        if regex:
            try:
                re.compile(value)
            except re.error as err:
                raise SilenceError(f"{where}.value: not a regular expression ({err})") from None
        found.append(Matcher(name, value, regex))
    return tuple(found)


def parse_matcher_text(text: str) -> Matcher:
    """``service=checkout`` or ``service=~check.*`` (the CLI's spelling)."""
    name, op, value = re.split(r"(=~|=)", text, maxsplit=1) if "=" in text else (text, "", "")
    if not op:
        raise SilenceError(f"matcher {text!r}: expected name=value or name=~regex")
    return parse_matchers([{"name": name.strip(), "value": value, "regex": op == "=~"}])[0]


def _from_row(row: Any) -> Silence:
    matchers = tuple(Matcher(m["name"], m["value"], bool(m.get("regex"))) for m in row.matchers or ())
    return Silence(
        row.id, matchers, row.starts_at, row.ends_at, row.author, row.comment or "", row.created_at
    )


class Silences:
    """Silences in the state store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        matchers: Sequence[Matcher],
        *,
        starts_at: float,
        ends_at: float,
        author: str,
        comment: str = "",
        now: float,
    ) -> Silence:
        """Store a new silence; ``SilenceError`` when it is not valid."""
        if not matchers:
            raise SilenceError("matchers: at least one is needed")
        if not isinstance(author, str) or not author.strip():
            raise SilenceError("author: who is silencing, e.g. an email address")
        if not ends_at > starts_at:
            raise SilenceError("ends_at: must be after starts_at")
        values = {
            "matchers": [m.as_dict() for m in matchers],
            "starts_at": starts_at,
            "ends_at": ends_at,
            "author": author.strip()[:200],
            "comment": comment,
            "created_at": now,
        }
        with self.engine.begin() as conn:
            new_id = conn.execute(insert(SILENCES).values(**values)).inserted_primary_key
        assert new_id is not None
        return self.get(int(new_id[0]))

    def get(self, silence_id: int) -> Silence:
        with self.engine.connect() as conn:
            row = conn.execute(select(SILENCES).where(SILENCES.c.id == silence_id)).first()
        if row is None:
            raise UnknownSilence(f"no silence has id {silence_id}")
        return _from_row(row)

    def all(self) -> list[Silence]:
        """Every silence, newest first."""
        with self.engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(select(SILENCES).order_by(SILENCES.c.id.desc()))]

    def active(self, now: float) -> list[Silence]:
        """The silences muting at ``now``."""
        query = select(SILENCES).where(and_(SILENCES.c.starts_at <= now, SILENCES.c.ends_at > now))
        with self.engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(query)]

    def expire(self, silence_id: int, now: float) -> Silence:
        """End a silence now (a silence that already ended keeps its end)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(SILENCES)
                .where(and_(SILENCES.c.id == silence_id, SILENCES.c.ends_at > now))
                .values(ends_at=now)
            )
        return self.get(silence_id)


def muting(silences: Sequence[Silence], labels: Mapping[str, str]) -> Silence | None:
    """The first of ``silences`` that matches ``labels``, or None."""
    for silence in silences:
        if silence.matches(labels):
            return silence
    return None
