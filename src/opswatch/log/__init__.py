"""Logging: the Logger, request context over contextvars, and the bridge from the stdlib."""

from .._context import bind_context, clear_context, context, current_context, unbind_context, with_context
from ._logger import Logger, get_logger

__all__ = [
    "Logger",
    "bind_context",
    "clear_context",
    "context",
    "current_context",
    "get_logger",
    "unbind_context",
    "with_context",
]
