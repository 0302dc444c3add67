"""The FastAPI application: ``create_app(ctx)`` and the two extension lists.

* ``ROUTERS``: HTTP API modules, each exposing ``router = fastapi.APIRouter()``. A bare name means
  ``opswatch.server.api.<name>``; a dotted name is imported as written. Modules that do not exist (yet, or
  in this install) are skipped; an import error inside an existing module is raised.
  A router module may also export ``FAST_PATHS``, ``[(compiled path pattern, endpoint)]``: POSTs
  whose path matches are answered by ``endpoint(request)`` before the middleware stack and the router
  (the ingest endpoints, where per-request overhead is a large part of the cost).
* ``SUBSYSTEMS``: ``"module:function"`` names; ``function(ctx)`` runs once per context before the app
  serves, and adds hooks (``ctx.hooks``), background workers (``ctx.background``) and tables. Missing
  modules are skipped like routers.

The lifespan starts the committer and the background workers when the server starts, and on shutdown
stops the workers, commits everything queued (every acknowledged event is durable already; queued ones
are committed before the store closes), and closes the stores.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from types import ModuleType

from fastapi import FastAPI
from sqlalchemy.exc import DataError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from .._version import __version__
from ..log import get_logger
from . import leader
from .context import ServerContext
from .state.base import Base
from .state.startup import schema_lock

_log = get_logger("opswatch.server")

#: HTTP API modules included in the app, in order.
ROUTERS: list[str] = [
    "health",
    "metrics",
    "ingest",
    "otlp",
    "pings",
    "events",
    "projects",
    "query",
    "issues",
    "monitors",
    "rules",
    "alerts",
    "silences",
    "ui",
]

#: Subsystems installed on every server context, in order: ``"module:function"``.
SUBSYSTEMS: list[str] = [
    "opswatch.server.issues:install",
    "opswatch.server.monitors:install",
    "opswatch.server.store.retention:install",
    "opswatch.server.traces.retention:install",
    "opswatch.server.traces.tail:install",
    "opswatch.server.state.sessions:install",
    "opswatch.server.rules:install",
]

_INSTALLED = "_opswatch_subsystems_installed"


def _import_optional(name: str) -> ModuleType | None:
    """Import ``name``; None when that module (or a package on its path) does not exist."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and (name == err.name or name.startswith(err.name + ".")):
            return None
        raise


def install_subsystems(ctx: ServerContext) -> list[str]:
    """Run every ``SUBSYSTEMS`` entry on ``ctx`` once; return the names that were installed."""
    if ctx.extras.get(_INSTALLED) is not None:
        installed: list[str] = ctx.extras[_INSTALLED]
        return installed
    installed = []
    with schema_lock(ctx.engine):  # replicas starting together: one at a time creates tables
        for entry in SUBSYSTEMS:
            module_name, _, function = entry.partition(":")
            module = _import_optional(module_name)
            if module is None:
                continue
            getattr(module, function or "install")(ctx)
            installed.append(entry)
        leader.install(ctx)  # after every subsystem: puts their singletons behind the replicas' lease
        Base.metadata.create_all(ctx.engine)
    ctx.extras[_INSTALLED] = installed
    return installed


FastPath = tuple[re.Pattern[str], Callable[[Request], Awaitable[Response]]]


class OpswatchApp(FastAPI):
    """FastAPI, plus ``fast_paths`` answered before the middleware stack (see the module docstring)."""

    fast_paths: list[FastPath]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            for pattern, endpoint in self.fast_paths:
                match = pattern.fullmatch(path)
                if match is not None:
                    scope["app"] = self
                    scope["path_params"] = match.groupdict()
                    response = await endpoint(Request(scope, receive, send))
                    await response(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


async def _out_of_range(_request: Request, _exc: Exception) -> Response:
    """400 for a number too large for the state database or a duration (``/api/0/issues/1e30``,
    ``"duration": 1e308``): request data, so a 4xx with the reason, never a 500."""
    return JSONResponse({"detail": "a number in the request is out of range"}, status_code=400)


async def _out_of_range_in_postgresql(request: Request, exc: Exception) -> Response:
    """The same 400 when PostgreSQL refuses the number (SQLSTATE 22003, ``integer out of range``:
    its ``INTEGER`` ends at 2**31 - 1 where SQLite's reach 2**63 - 1 and Python raises OverflowError).
    Any other data error is the server's own fault: raised again, a 500."""
    if getattr(getattr(exc, "orig", None), "sqlstate", None) == "22003":
        return await _out_of_range(request, exc)
    raise exc


def create_app(ctx: ServerContext) -> FastAPI:
    """The application for ``ctx``: subsystems installed, every available router included."""
    install_subsystems(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.start()
        try:
            yield
        finally:
            ctx.close()

    app = OpswatchApp(
        title="opswatch",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.ctx = ctx
    app.fast_paths = []
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(DataError, _out_of_range_in_postgresql)
    for name in ROUTERS:
        module = _import_optional(name if "." in name else f"opswatch.server.api.{name}")
        if module is None:
            continue
        router = getattr(module, "router", None)
        if router is None:
            _log.warn("a module in ROUTERS has no router", {"module": name})
            continue
        app.include_router(router)
        app.fast_paths.extend(getattr(module, "FAST_PATHS", ()))
    return app
