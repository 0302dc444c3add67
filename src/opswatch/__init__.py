"""opswatch: production monitoring for Python services.

The public API, and nothing else. ``init()`` configures; ``get_logger()`` logs; the rest of the surface
(performance tracking, metrics, cron jobs, alerts) is exported here as it is built.
"""

from ._setup import flush, init, settings, shutdown
from ._stats import stats
from ._version import __version__
from .alerts.api import send_slack_notification
from .alerts.templates import SlackNotifications
from .config import ConfigError, Settings
from .crons import cron_job, execute_cron_job, verify_cron_auth
from .log import (
    Logger,
    bind_context,
    clear_context,
    context,
    current_context,
    get_logger,
    unbind_context,
    with_context,
)
from .metrics import CATALOG as metrics  # the catalog object; opswatch.metrics.* modules stay importable
from .perf import start_timer, track_external_call, track_performance, track_query
from .tracing import current_span, span

#: The default logger, for the seed's ``logger.info(...)`` shape.
logger = get_logger("app")

__all__ = [
    "ConfigError",
    "Logger",
    "Settings",
    "SlackNotifications",
    "__version__",
    "bind_context",
    "clear_context",
    "context",
    "cron_job",
    "current_context",
    "current_span",
    "execute_cron_job",
    "flush",
    "get_logger",
    "init",
    "logger",
    "metrics",
    "send_slack_notification",
    "settings",
    "shutdown",
    "span",
    "start_timer",
    "stats",
    "track_external_call",
    "track_performance",
    "track_query",
    "unbind_context",
    "verify_cron_auth",
    "with_context",
]
