"""Issues: every error or fatal record that reaches the server belongs to one.

``grouping`` decides which (pure), ``upsert`` counts events in, ``lifecycle`` moves issues between
unresolved, resolved, regressed and ignored (each move logged by ``activity``), ``read`` answers the API
and CLI, ``notify`` builds the messages for new and regressed issues, ``service.IssueService`` ties them
to the state store, and ``worker`` holds the ingest hook and the background sweeper.
``install(ctx)`` plugs the subsystem into a server (listed in ``SUBSYSTEMS`` in ``server/app.py``).
"""

from __future__ import annotations

from typing import Any

from .notify import IssueNotices
from .service import IssueService, IssueSettings, install_tables
from .worker import IssueHook, IssueSweeper

__all__ = ["EXTRA", "IssueHook", "IssueService", "IssueSettings", "IssueSweeper", "install"]

#: Where ``install`` keeps the service in ``ctx.extras``.
EXTRA = "issues"


def install(ctx: Any) -> IssueService:
    """Create the issues tables, register the ingest hook (error and fatal records of every durable
    batch) and the background sweeper (auto-resolve, timed ignores, pruning); return the service."""
    install_tables(ctx.engine)
    settings = IssueSettings.from_server_settings(ctx.settings)
    service = IssueService(ctx.engine, now=ctx.now)
    base_url = str(getattr(ctx.settings, "base_url", "") or "")
    from ..rules.outbox_rules import OutboxGate  # the rules decide, once they are installed

    gate = OutboxGate(ctx)
    notices = IssueNotices(ctx.engine, base_url, gate=gate, channels=gate.channels)
    ctx.hooks.append(IssueHook(service, settings, base_url, notices))
    ctx.background.append(IssueSweeper(service, settings, notices=notices, notifier=lambda: ctx.notifier))
    ctx.extras[EXTRA] = service
    return service
