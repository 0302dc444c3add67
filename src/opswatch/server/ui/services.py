"""The subsystems' services as the dashboard finds them on a server context (None when not installed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..context import ServerContext

if TYPE_CHECKING:
    from ..issues.service import IssueService
    from ..monitors.service import MonitorService


def issue_service(ctx: ServerContext) -> IssueService | None:
    """The issues service installed on ``ctx``, or None."""
    try:
        from ..issues import EXTRA
        from ..issues.service import IssueService
    except ModuleNotFoundError:
        return None
    service = ctx.extras.get(EXTRA)
    return service if isinstance(service, IssueService) else None


def monitor_service(ctx: ServerContext) -> MonitorService | None:
    """The cron monitor service installed on ``ctx``, or None."""
    try:
        from ..monitors import service_for
    except ModuleNotFoundError:
        return None
    try:
        return service_for(ctx)
    except LookupError:
        return None
