"""``/api/0/alerts``: alert instances that are pending or firing, and the notification history
(admin token required).

- ``GET /api/0/alerts``: ``state`` (``firing``, ``pending``, ``active`` = both (default), ``all``),
  ``rule``; answers ``{"items": [...], "history": [...]}``, the history being the newest ``history``
  (0..1000, default 50) rows of the notification log: sent, silenced, unannounced, with their reasons.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Depends, HTTPException, Request

from ..auth import require_admin
from ..rules.store import history as notification_history
from ..rules.views import instance_view, notification_view
from .rules import runtime

router = APIRouter(prefix="/api/0/alerts", tags=["alerts"], dependencies=[Depends(require_admin)])

STATES: Final = {"firing": ("firing",), "pending": ("pending",), "active": ("firing", "pending")}
MAX_HISTORY: Final = 1000


@router.get("")
def list_alerts(
    request: Request, state: str = "active", rule: str | None = None, history: int = 50
) -> dict[str, Any]:
    """Instances in the states asked for, firing first, and the recent history."""
    if state != "all" and state not in STATES:
        raise HTTPException(400, f"state: expected one of {', '.join([*STATES, 'all'])}")
    if not 0 <= history <= MAX_HISTORY:
        raise HTTPException(400, f"history: expected 0..{MAX_HISTORY}")
    service = runtime(request).service
    wanted = STATES.get(state)
    found = [
        instance_view(name, service.latest(name, instance))
        for name, instance in service.state.all_instances(rule)
        if wanted is None or instance.status in wanted
    ]
    found.sort(key=lambda item: (item["state"] != "firing", item["rule"]))
    rows = notification_history(service.state.engine, rule, history) if history else []
    return {"items": found, "total": len(found), "history": [notification_view(row) for row in rows]}
