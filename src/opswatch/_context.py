"""Request-scoped fields over ``contextvars``: they follow asyncio tasks, and threads when asked.

``context(**fields)`` binds for a ``with`` block; ``bind_context`` binds until the current context ends
(or ``unbind_context``/``clear_context``). Every record logged inside carries the fields.
Threads do not inherit context by themselves; ``with_context(fn)`` wraps a function so that it runs in a
copy of the caller's context (``asyncio.to_thread`` already does this).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar

_EMPTY: Mapping[str, Any] = {}
_fields: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "opswatch_context", default=_EMPTY
)

P = ParamSpec("P")
R = TypeVar("R")


def current_context() -> Mapping[str, Any]:
    """The fields bound in the current context (read-only; do not mutate)."""
    return _fields.get()


@contextlib.contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Bind ``fields`` to every record logged inside the ``with`` block, in this task or thread."""
    token = _fields.set({**_fields.get(), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def bind_context(**fields: Any) -> None:
    """Add ``fields`` to the current context until it ends (a task, a request, or ``clear_context``)."""
    _fields.set({**_fields.get(), **fields})


def unbind_context(*names: str) -> None:
    """Remove the named fields from the current context."""
    current = _fields.get()
    _fields.set({k: v for k, v in current.items() if k not in names})


def clear_context() -> None:
    """Remove every field from the current context."""
    _fields.set(_EMPTY)


def with_context(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``fn`` so that it runs in a copy of the *caller's* context, e.g. as a thread's target."""
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return run
