"""Alert rules on the server: signals over time windows, a state machine, notifications once.

The parts, one job each: ``model`` (what a rule is), ``durations``, ``load`` (TOML and mappings,
validated), ``signals`` (SQL over the event store), ``rollup_signals`` (the per-minute rollups), ``evaluate``
(one rule at one time), ``machine`` (the pure state machine), ``store`` (state in the state store),
``service`` (the evaluation round), ``silences``, ``messages`` (what notifications say), ``notify``
(the notification log to the notifier), ``loop`` (the background clock), ``defaults``, ``views``;
for the other kinds ``baselines`` (change and anomaly rules, over shifted windows of any signal source),
``issue_signals`` and ``monitor_signals`` (issues and cron monitors of the state store, and ``Routed``,
which picks the source by signal), ``outbox_rules`` (the issue and cron notifications as default rules,
delivered by their own outboxes).

``install(ctx)`` is listed in ``opswatch.server.app.SUBSYSTEMS``: it creates the tables, loads the
default rules and ``OPSWATCH_RULES_FILE`` (a bad file stops the server at start, naming rule and key),
and adds the ``RuleClock`` to ``ctx.background``. The API and CLI reach it through ``rules_for(ctx)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .catalog import install_catalog
from .defaults import default_rules, merged, notice_rules
from .issue_signals import IssueSource
from .load import load_file
from .loop import RuleClock
from .model import Rule
from .notify import Dispatcher, Timing
from .rollup_signals import RollupSource
from .service import RuleService

__all__ = ["RuleClock", "RuleService", "Rules", "configured_rules", "install", "rules_for"]

#: The key of the rules runtime in ``ctx.extras``.
EXTRA = "rules"


@dataclasses.dataclass(frozen=True)
class Rules:
    """The rules runtime of one server: the service (state, evaluation), the dispatcher and the clock."""

    service: RuleService
    dispatcher: Dispatcher
    clock: RuleClock


def configured_rules(settings: Any) -> list[Rule]:
    """The defaults (unless switched off), the notice defaults (by their own settings) and the rules
    file, the file's rules replacing defaults by name."""
    defaults = default_rules() if getattr(settings, "rules_defaults", True) else []
    defaults += notice_rules(settings)
    path = getattr(settings, "rules_file", None)
    return merged(defaults, load_file(path) if path is not None else [])


def install(ctx: Any) -> Rules:
    """Set up alert rules for a server context (listed in ``SUBSYSTEMS``); ``ConfigError`` on a bad file."""
    from ..monitors import epoch_clock
    from ..state import rules as tables

    tables.install(ctx.engine)
    settings = ctx.settings
    service = RuleService(
        ctx.engine,
        RollupSource(ctx.store),  # rollups where they answer, EventQuerySource for the rest
        configured_rules(settings),
        ingest_delay=float(settings.rules_ingest_delay),
        now=epoch_clock(ctx.now),
        issues=IssueSource(ctx.engine, ctx.store),
    )
    timing = Timing(
        float(settings.rules_group_wait),
        float(settings.rules_group_interval),
        float(settings.rules_repeat_interval),
    )
    dispatcher = Dispatcher(
        ctx.engine, ctx.notifier, lambda: service.rules, timing=timing, base_url=settings.base_url
    )
    clock = RuleClock(
        service,
        dispatcher,
        interval=float(settings.rules_interval),
        retention_days=int(getattr(settings, "retention_days", 30) or 30),
    )
    runtime = Rules(service, dispatcher, clock)
    clock.before_round.append(install_catalog(ctx, service, list(service.rules.values())).refresh)
    ctx.background.append(clock)
    ctx.extras[EXTRA] = runtime
    return runtime


def rules_for(ctx: Any) -> Rules:
    """The rules runtime installed on ``ctx``; ``LookupError`` when rules are not installed."""
    runtime = ctx.extras.get(EXTRA)
    if not isinstance(runtime, Rules):
        raise LookupError("alert rules are not installed on this server (SUBSYSTEMS in server/app.py)")
    return runtime
