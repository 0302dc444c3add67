"""``/api/0/rules``: the alert rules with their state (admin token required).

- ``GET  /api/0/rules``: every rule (its keys, source, last evaluation, error, instances per state).
- ``GET  /api/0/rules/{name}``: one rule, its instances and its recent notification history.
- ``POST /api/0/rules/{name}/eval``: evaluate the rule now without changing its state (a preview: the
  window, each instance's value and level, or the evaluation error).

- ``POST /api/0/rules``: create a rule from a JSON object of the rules file's keys (201; 409 when it
  exists). ``PUT /api/0/rules/{name}``: create or replace it. ``DELETE /api/0/rules/{name}``: delete it.
  A bad rule is a 400 naming the rule and key, as ``opswatch rules check`` does for a file. Rules of
  the rules file are read-only here (409); an API rule with a default's name replaces the default
  (``rules.catalog`` has the precedence).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from ..auth import get_context, require_admin
from ..rules import Rules, rules_for
from ..rules.catalog import ReadOnlyRule, RuleCatalog, TooManyRules, catalog_for
from ..rules.load import RuleError
from ..rules.service import UnknownRule
from ..rules.store import history
from ..rules.views import evaluation_view, instance_view, notification_view, rule_view

router = APIRouter(prefix="/api/0/rules", tags=["rules"], dependencies=[Depends(require_admin)])

MAX_HISTORY: Final = 1000
_Body = Annotated[Any, Body()]


def runtime(request: Request) -> Rules:
    """The rules runtime of the server answering ``request``; 503 when rules are not installed."""
    try:
        return rules_for(get_context(request))
    except LookupError as err:
        raise HTTPException(503, str(err)) from None


@router.get("")
def list_rules(request: Request) -> dict[str, Any]:
    """Every rule with its status and how many instances are pending and firing."""
    service = runtime(request).service
    counts: dict[str, Counter[str]] = {}
    for rule_name, instance in service.state.all_instances():
        counts.setdefault(rule_name, Counter())[instance.status] += 1
    items = [
        rule_view(rule, service.state.status(rule.name), counts.get(rule.name, Counter()))
        for rule in service.rules.values()
    ]
    # Stored API rules that a file rule of the same name overrides (not evaluated while it does).
    return {"items": items, "total": len(items), "shadowed": catalog(request).shadowed()}


@router.get("/{name}")
def get_rule(request: Request, name: str, history_limit: int = 50) -> dict[str, Any]:
    """One rule, its instances and its recent history."""
    if not 1 <= history_limit <= MAX_HISTORY:
        raise HTTPException(400, f"history_limit: expected 1..{MAX_HISTORY}")
    service = runtime(request).service
    try:
        rule = service.rule(name)
    except UnknownRule as err:
        raise HTTPException(404, str(err)) from None
    view = rule_view(rule, service.state.status(name))
    if rule.source == "api":
        view["definition"] = catalog(request).keys(name)
    view["alerts"] = [
        instance_view(name, service.latest(name, i)) for _r, i in service.state.all_instances(name)
    ]
    view["history"] = [notification_view(row) for row in history(service.state.engine, name, history_limit)]
    return view


@router.post("/{name}/eval")
def eval_rule(request: Request, name: str) -> dict[str, Any]:
    """Evaluate the rule now, changing nothing."""
    service = runtime(request).service
    try:
        rule = service.rule(name)
    except UnknownRule as err:
        raise HTTPException(404, str(err)) from None
    return evaluation_view(rule, service.preview(name))


def catalog(request: Request) -> RuleCatalog:
    """The rule catalog of the server answering ``request``; 503 when rules are not installed."""
    try:
        return catalog_for(get_context(request))
    except LookupError as err:
        raise HTTPException(503, str(err)) from None


def _put(request: Request, body: Any, name: str | None, create: bool) -> dict[str, Any]:
    rules = catalog(request)
    if not isinstance(body, dict):
        raise HTTPException(400, "expected a JSON object of the rule's keys (as a rules file spells them)")
    try:
        rule = rules.put(body, runtime(request).service.now(), name=name, create=create)
    except RuleError as err:
        raise HTTPException(400, err.args[0].removeprefix("opswatch setting ")) from None
    except ReadOnlyRule as err:
        raise HTTPException(409, str(err)) from None
    except TooManyRules as err:
        raise HTTPException(400, str(err)) from None
    view = rule_view(rule, runtime(request).service.state.status(rule.name))
    view["definition"] = rules.keys(rule.name)
    return view


@router.post("", status_code=201)
def create_rule(request: Request, body: _Body = None) -> dict[str, Any]:
    """Create an API rule from its keys."""
    return _put(request, body, None, True)


@router.put("/{name}")
def replace_rule(request: Request, name: str, body: _Body = None) -> dict[str, Any]:
    """Create or replace the API rule ``name``."""
    return _put(request, body, name, False)


@router.delete("/{name}")
def delete_rule(request: Request, name: str) -> dict[str, Any]:
    """Delete the API rule ``name``; its firing alerts resolve, a default it replaced is back."""
    try:
        restored = catalog(request).delete(name, runtime(request).service.now())
    except ReadOnlyRule as err:
        raise HTTPException(409, str(err)) from None
    except UnknownRule as err:
        raise HTTPException(404, str(err)) from None
    return {"deleted": name, "restored": None if restored is None else restored.source}
