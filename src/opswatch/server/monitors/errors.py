"""Errors the monitor subsystem raises to its callers (API, CLI, ingest hook)."""

from __future__ import annotations


class MonitorConfigError(ValueError):
    """A monitor setting is wrong; ``key`` names it and the message says what would work."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class UnknownMonitor(LookupError):
    """No monitor has that slug (in that project)."""


class MonitorExists(ValueError):
    """A monitor with that slug exists already (in that project)."""


class AmbiguousMonitor(LookupError):
    """The slug names monitors in several projects; the caller must say which project."""
