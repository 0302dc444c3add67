"""The dashboard's rule form: a rule written as a TOML snippet, saved through the rule catalog (the same
validation and precedence as ``/api/0/rules``), and a stored rule written back as TOML for editing.

``save(ctx, form, now)`` reads the form (``toml``, ``mode`` = ``create`` or ``edit``, ``name`` when
editing) and returns the saved rule's name, or raises ``RuleFormError`` with the text to show and the
HTTP status (400 for a bad rule, 409 for a read-only or existing one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from ..context import ServerContext
from ..rules.catalog import ReadOnlyRule, RuleCatalog, TooManyRules, catalog_for, rule_from_toml
from ..rules.load import RuleError
from .pages import NotInstalled

#: What the empty form shows as an example.
EXAMPLE: Final = """name = "checkout-errors"
signal = "error_ratio"
where = "service = 'checkout'"
window = "5m"
critical = "> 0.05"
for = "2m"
"""


class RuleFormError(Exception):
    """The form's rule was not saved: ``message`` says why, ``status`` is the answer's HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def catalog(ctx: ServerContext) -> RuleCatalog:
    """The rule catalog; ``NotInstalled`` when rules are not installed."""
    try:
        return catalog_for(ctx)
    except LookupError as err:
        raise NotInstalled(str(err)) from None


def save(ctx: ServerContext, form: Mapping[str, str], now: float) -> str:
    """Create (``mode=create``) or replace (``mode=edit`` of ``name``) the rule the form's TOML holds."""
    text = form.get("toml", "")
    if not text.strip():
        raise RuleFormError("toml: write the rule's keys (name, signal, window, critical ...)")
    editing = form.get("mode") == "edit"
    try:
        keys = rule_from_toml(text)
        rule = catalog(ctx).put(keys, now, name=form.get("name") if editing else None, create=not editing)
    except RuleError as err:
        raise RuleFormError(err.args[0].removeprefix("opswatch setting ")) from None
    except ReadOnlyRule as err:
        raise RuleFormError(str(err), 409) from None
    except TooManyRules as err:
        raise RuleFormError(str(err)) from None
    return rule.name


def delete(ctx: ServerContext, name: str, now: float) -> None:
    """Delete the API rule ``name``; ``RuleFormError`` (409) for a file rule or a default."""
    try:
        catalog(ctx).delete(name, now)
    except ReadOnlyRule as err:
        raise RuleFormError(str(err), 409) from None


def editing(ctx: ServerContext, name: str, source: str) -> dict[str, Any]:
    """What a rule's page offers: ``editable`` (an API rule), its ``toml`` to edit, or why it cannot be."""
    if source != "api":
        where = "the rules file (OPSWATCH_RULES_FILE)" if source == "file" else "the defaults"
        return {"editable": False, "reason": f"This rule comes from {where}: it is read-only here."}
    keys = catalog(ctx).keys(name) or {}
    return {"editable": True, "toml": to_toml(keys)}


def to_toml(keys: Mapping[str, Any]) -> str:
    """A rule's keys as TOML lines (``key = value``; tables inline), as a person would write them."""
    return "".join(f"{key} = {_value(value)}\n" for key, value in keys.items())


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string: the same escapes
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)
