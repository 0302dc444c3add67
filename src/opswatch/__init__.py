"""opswatch: production monitoring for Python services.

The public API, and nothing else. ``init()`` configures; ``get_logger()`` logs; the rest of the surface
(performance tracking, metrics, cron jobs, alerts) is exported here as it is built.
"""

from ._setup import flush, init, settings, shutdown
from ._version import __version__
from .config import ConfigError, Settings
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

#: The default logger, for the seed's ``logger.info(...)`` shape.
logger = get_logger("app")

__all__ = [
    "ConfigError",
    "Logger",
    "Settings",
    "__version__",
    "bind_context",
    "clear_context",
    "context",
    "current_context",
    "flush",
    "get_logger",
    "init",
    "logger",
    "settings",
    "shutdown",
    "unbind_context",
    "with_context",
]
