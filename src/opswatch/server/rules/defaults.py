"""The rules that ship on (``OPSWATCH_RULES_DEFAULTS``), written in the rule file's own keys, and the
issue and cron notifications as rules (``NOTICE_RULES``, switched by their own settings).

A rule in the rules file with the same name replaces a default, so a team edits a default by copying
it into its file. The API p95 rule reads Sentry transactions and the SDK's per-request measurements
(``perf.api.*``, recorded for every request when debug records are collected); the SDK's slow-request
warnings (``performance.*``) are left out, since a sample of only slow requests would put any p95 above
the threshold.
"""

from __future__ import annotations

from typing import Any, Final

from .load import load_many
from .model import Rule

DEFAULT_RULES: Final[tuple[dict[str, Any], ...]] = (
    {
        # The seed's highErrorRate template, per service, as issue 12 writes it.
        "name": "high-error-rate",
        "signal": "error_ratio",
        "where": "kind IN ('log', 'error')",
        "group_by": ["service"],
        "window": "5m",
        "warning": "> 0.02",
        "critical": "> 0.05",
        "resolve": "< 0.01",
        "min_events": 20,
        "for": "2m",
        "template": "high_error_rate",
    },
    {
        # The seed's slow threshold for API calls (1 s), held for 10 minutes.
        "name": "api-p95-latency",
        "signal": "p95",
        "field": "duration_ms",
        "where": "kind = 'transaction' OR operation LIKE 'perf.api.%'",
        "group_by": ["service"],
        "window": "10m",
        "critical": "> 1000",
        "resolve": "< 800",
        "min_events": 20,
        "for": "10m",
    },
)


#: The notifications that predate the rules, as rules of the issue and monitor kinds, each with the
#: setting that switches it (on unless set false). Their subsystems' outboxes deliver them at once with
#: their own messages (``outbox_rules``); the rules add silences, inhibition and the Alerts page.
NOTICE_RULES: Final[tuple[tuple[dict[str, Any], str], ...]] = (
    ({"name": "issue-new", "signal": "issue_new", "window": "1h"}, "notify_new_issues"),
    ({"name": "issue-regressed", "signal": "issue_regressed", "window": "1h"}, "notify_regressed_issues"),
    ({"name": "cron-failing", "signal": "monitor_failing", "window": "1m"}, "notify_cron_failures"),
)


def default_rules() -> list[Rule]:
    """The default rules, loaded like any others."""
    return load_many(list(DEFAULT_RULES), source="defaults")


def notice_rules(settings: Any) -> list[Rule]:
    """The notice defaults whose setting is on in ``settings`` (independent of ``rules_defaults``)."""
    chosen = [rule for rule, setting in NOTICE_RULES if getattr(settings, setting, True) is not False]
    return load_many(chosen, source="defaults")


def merged(defaults: list[Rule], configured: list[Rule]) -> list[Rule]:
    """``configured`` plus the defaults it does not replace (by name)."""
    names = {rule.name for rule in configured}
    return [*(rule for rule in defaults if rule.name not in names), *configured]
