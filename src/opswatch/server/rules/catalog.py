"""Rules managed through the API and the dashboard, kept in the state store next to the file's rules.

A server's rules come from three places, in this order of precedence:

1. the rules file (``OPSWATCH_RULES_FILE``): read-only through the API (409 saying so); a team that keeps
   its rules in git changes them there;
2. rules created through ``/api/0/rules`` or the dashboard (source ``api``), stored in
   ``rule_definitions`` as the file's keys and validated by the same loader (``load.rule_from_mapping``),
   so an API rule is exactly what the same table in a file would be;
3. the defaults (``OPSWATCH_RULES_DEFAULTS``): an API rule with a default's name replaces it (as a file
   rule does), and deleting that API rule brings the default back; a default itself cannot be deleted.

A stored rule shadowed by a file rule of the same name stays stored but is not evaluated (the file
wins; the API says so). Every server re-reads the table's ``(name, version)`` pairs before each
evaluation round (``refresh``), re-validating only what changed, so replicas pick up a change within an
interval; the server that took the change applies it at once. Deleting a rule resolves its firing alerts
("the rule was removed"), as taking a rule out of the file does at the next start.
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ...log import get_logger
from .. import limits
from ..state.rule_definitions import DEFINITIONS
from .load import RuleError, rule_from_mapping
from .model import Rule
from .service import RuleService, UnknownRule
from .store import retire

_log = get_logger("opswatch.server.rules")

#: The key of the catalog in ``ctx.extras``.
EXTRA: Final = "rules_catalog"


class ReadOnlyRule(Exception):
    """The rule comes from the rules file (or is a default) and cannot be changed through the API."""


class TooManyRules(Exception):
    """Adding the rule would pass ``limits.RULES_MAX``."""


def rule_from_toml(text: str) -> dict[str, Any]:
    """The keys of one rule written as TOML: the bare keys (``name = ...``) or one ``[[rules]]`` table.
    ``RuleError`` (naming the snippet) when it is not TOML or holds more or fewer than one rule."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise RuleError("(snippet)", None, f"not valid TOML: {err}") from None
    if set(data) == {"rules"}:
        tables = data["rules"]
        if not isinstance(tables, list) or len(tables) != 1 or not isinstance(tables[0], dict):
            raise RuleError("(snippet)", None, "expected one rule: its keys, or one [[rules]] table")
        return dict(tables[0])
    return dict(data)


class RuleCatalog:
    """The rules of one server: the file's and the defaults (``base``) and the stored API rules, merged
    into ``service.rules``. Thread-safe."""

    def __init__(self, engine: Engine, service: RuleService, base: Sequence[Rule]) -> None:
        self.engine = engine
        self.service = service
        self.base: dict[str, Rule] = {rule.name: rule for rule in base}
        self._api: dict[str, tuple[int, Rule]] = {}
        self._broken: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the stored rules that changed (by version) and apply the merged set to the service."""
        with self._lock:
            with self.engine.connect() as conn:
                versions = {
                    row.name: row.version
                    for row in conn.execute(select(DEFINITIONS.c.name, DEFINITIONS.c.version))
                }
                changed = [
                    name
                    for name, version in versions.items()
                    if self._api.get(name, (None,))[0] != version and self._broken.get(name) != version
                ]
                rows = (
                    list(conn.execute(select(DEFINITIONS).where(DEFINITIONS.c.name.in_(changed))))
                    if changed
                    else []
                )
            for name in list(self._api):
                if name not in versions:
                    del self._api[name]
            for row in rows:
                try:
                    self._api[row.name] = (row.version, rule_from_mapping(row.definition, source="api"))
                    self._broken.pop(row.name, None)
                except RuleError as err:  # written by a newer or older server: skipped, said once
                    self._broken[row.name] = row.version
                    self._api.pop(row.name, None)
                    _log.error(
                        "a stored rule is not valid here; skipped", {"rule": row.name, "problem": str(err)}
                    )
            self.service.rules = self._merged()

    def _merged(self) -> dict[str, Rule]:
        merged: dict[str, Rule] = {}
        for name, rule in self.base.items():
            stored = self._api.get(name)
            merged[name] = stored[1] if stored is not None and rule.source != "file" else rule
        for name in sorted(self._api):
            merged.setdefault(name, self._api[name][1])
        return merged

    def keys(self, name: str) -> dict[str, Any] | None:
        """The stored keys of the API rule ``name`` (what an edit form starts from), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(DEFINITIONS.c.definition).where(DEFINITIONS.c.name == name)).first()
        return None if row is None else dict(row.definition)

    def shadowed(self) -> list[str]:
        """Stored API rules that a file rule of the same name overrides."""
        with self._lock:
            return sorted(n for n in self._api if n in self.base and self.base[n].source == "file")

    # -- changing ------------------------------------------------------------------------------------

    def _check_writable(self, name: str) -> None:
        found = self.base.get(name)
        if found is not None and found.source == "file":
            raise ReadOnlyRule(
                f"rule {name!r} comes from the rules file (OPSWATCH_RULES_FILE) and is read-only through "
                "the API; change it in the file"
            )

    def put(self, data: Any, now: float, *, name: str | None = None, create: bool = False) -> Rule:
        """Create or replace an API rule from its keys; ``RuleError`` (400), ``ReadOnlyRule`` (409: a file
        rule, or ``create`` and the API rule exists), ``TooManyRules``."""
        if isinstance(data, Mapping) and name is not None:
            given = data.get("name", name)
            if given != name:
                raise RuleError(name, "name", f"the body names {given!r}; rename by deleting and adding")
            data = {**data, "name": name}
        rule = rule_from_mapping(data, source="api")
        self._check_writable(rule.name)
        keys = dict(data)
        with self._lock:
            exists = rule.name in self._api
            if create and exists:
                raise ReadOnlyRule(f"rule {rule.name!r} exists; change it with PUT /api/0/rules/{rule.name}")
            if not exists and rule.name not in self.base and len(self.service.rules) >= limits.RULES_MAX:
                raise TooManyRules(f"this server has {limits.RULES_MAX} rules, the limit")
        self._write(rule.name, keys, now)
        self.refresh()
        return self.service.rules[rule.name]

    def _write(self, name: str, keys: dict[str, Any], now: float) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(DEFINITIONS)
                .where(DEFINITIONS.c.name == name)
                .values(definition=keys, version=DEFINITIONS.c.version + 1, updated_at=now)
            ).rowcount
            if done:
                return
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(DEFINITIONS).values(
                            name=name, definition=keys, version=1, created_at=now, updated_at=now
                        )
                    )
            except IntegrityError:  # created by another request in between: replace it
                conn.execute(
                    update(DEFINITIONS)
                    .where(DEFINITIONS.c.name == name)
                    .values(definition=keys, version=DEFINITIONS.c.version + 1, updated_at=now)
                )

    def delete(self, name: str, now: float) -> Rule | None:
        """Delete the API rule ``name``; returns the default it had replaced (now back), or None.
        ``UnknownRule`` (404) or ``ReadOnlyRule`` (409: a file rule or a default)."""
        self._check_writable(name)
        with self.engine.begin() as conn:
            gone = conn.execute(delete(DEFINITIONS).where(DEFINITIONS.c.name == name)).rowcount
        if not gone:
            if name in self.base:
                raise ReadOnlyRule(
                    f"rule {name!r} is a default: OPSWATCH_RULES_DEFAULTS=false turns the defaults off, "
                    "and a rule added with its name replaces it"
                )
            raise UnknownRule(f"no rule is called {name!r}")
        self.refresh()
        try:
            retire(self.engine, self.service.rules, now)
        except Exception as err:  # the next start's first round resolves them instead
            _log.error("alerts of a deleted rule could not be resolved", {"rule": name}, err)
        return self.base.get(name)


def install_catalog(ctx: Any, service: RuleService, base: Sequence[Rule]) -> RuleCatalog:
    """Create the tables, merge the stored rules into ``service`` and keep the catalog in ``ctx.extras``."""
    from ..state import rule_definitions

    rule_definitions.install(ctx.engine)
    catalog = RuleCatalog(ctx.engine, service, base)
    catalog.refresh()
    ctx.extras[EXTRA] = catalog
    return catalog


def catalog_for(ctx: Any) -> RuleCatalog:
    """The catalog installed on ``ctx``; ``LookupError`` when rules are not installed."""
    found = ctx.extras.get(EXTRA)
    if not isinstance(found, RuleCatalog):
        raise LookupError("alert rules are not installed on this server (SUBSYSTEMS in server/app.py)")
    return found
