"""``/api/0/silences``: mute rule notifications by matchers on the rule and labels (admin token required).

- ``GET    /api/0/silences``: every silence, newest first, with its state (active, pending, expired).
- ``POST   /api/0/silences``: ``{"matchers": [{"name": "service", "value": "checkout", "regex": false}],
  "author": "...", "comment": "...", "starts_at": <epoch, default now>, "ends_at": <epoch>}`` or
  ``"duration": "2h"`` instead of ``ends_at``; 201 with the silence, 400 naming a bad field.
- ``POST   /api/0/silences/{id}/expire`` (and ``DELETE /api/0/silences/{id}``): end it now.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from ..auth import require_admin
from ..rules.durations import parse_duration
from ..rules.silences import SilenceError, UnknownSilence, parse_matchers
from .rules import runtime

router = APIRouter(prefix="/api/0/silences", tags=["silences"], dependencies=[Depends(require_admin)])
_Body = Annotated[dict[str, Any] | None, Body()]


def _now(request: Request) -> float:
    return runtime(request).service.now()


def _number(body: dict[str, Any], key: str, default: float | None) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HTTPException(400, f"{key}: expected seconds since the epoch")
    return float(value)


@router.get("")
def list_silences(request: Request) -> dict[str, Any]:
    """Every silence, newest first."""
    now = _now(request)
    silences = runtime(request).dispatcher.silences.all()
    return {"items": [s.as_dict(now) for s in silences], "total": len(silences)}


@router.post("", status_code=201)
def create_silence(request: Request, body: _Body = None) -> dict[str, Any]:
    """Create a silence."""
    if not isinstance(body, dict):
        raise HTTPException(400, "expected a JSON object with matchers, author and ends_at or duration")
    now = _now(request)
    starts_at = _number(body, "starts_at", now)
    if "duration" in body:
        try:
            ends_at = starts_at + parse_duration(body["duration"])
        except ValueError as err:
            raise HTTPException(400, f"duration: {err}") from None
    else:
        ends_at = _number(body, "ends_at", None)
    try:
        matchers = parse_matchers(body.get("matchers"))
        silence = runtime(request).dispatcher.silences.create(
            matchers,
            starts_at=starts_at,
            ends_at=ends_at,
            author=body.get("author", ""),
            comment=str(body.get("comment") or ""),
            now=now,
        )
    except SilenceError as err:
        raise HTTPException(400, str(err)) from None
    return silence.as_dict(now)


@router.delete("/{silence_id}")
def delete_silence(request: Request, silence_id: int) -> dict[str, Any]:
    """End a silence now (silences are kept as history, so deleting one expires it)."""
    return expire_silence(request, silence_id)


@router.post("/{silence_id}/expire")
def expire_silence(request: Request, silence_id: int) -> dict[str, Any]:
    """End a silence now; a rule it muted that still fires is announced."""
    now = _now(request)
    try:
        return runtime(request).dispatcher.silences.expire(silence_id, now).as_dict(now)
    except UnknownSilence as err:
        raise HTTPException(404, str(err)) from None
