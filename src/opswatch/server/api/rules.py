"""``/api/0/rules``: the alert rules with their state (admin token required).

- ``GET  /api/0/rules``: every rule (its keys, source, last evaluation, error, instances per state).
- ``GET  /api/0/rules/{name}``: one rule, its instances and its recent notification history.
- ``POST /api/0/rules/{name}/eval``: evaluate the rule now without changing its state (a preview: the
  window, each instance's value and level, or the evaluation error).

Rules come from the defaults and ``OPSWATCH_RULES_FILE``; managing them through the API comes later.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from fastapi import APIRouter, Depends, HTTPException, Request

from ..auth import get_context, require_admin
from ..rules import Rules, rules_for
from ..rules.service import UnknownRule
from ..rules.store import history
from ..rules.views import evaluation_view, instance_view, notification_view, rule_view

router = APIRouter(prefix="/api/0/rules", tags=["rules"], dependencies=[Depends(require_admin)])

MAX_HISTORY: Final = 1000


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
    return {"items": items, "total": len(items)}


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
