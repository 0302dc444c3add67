"""Requests per second through a minimal app, with and without the opswatch middleware, in one run.

Run: .venv/bin/python benchmarks/bench_middleware.py [--requests N] [--repeat R]

Each framework's app is called in-process (an ASGI call for Starlette, a WSGI call for Flask and
Django), so the numbers are the framework plus the middleware, without sockets or an HTTP client in
the way. The console takes info and up, as in production, so the per-request debug measurement is not
built. Prints requests/s both ways and the middleware's cost per request in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import time
from collections.abc import Callable
from typing import Any

import opswatch

PATH = "/donations/42"


# -- Starlette (ASGI) --------------------------------------------------------------------------------


def starlette_apps() -> tuple[Any, Any]:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from opswatch.integrations.asgi import OpswatchMiddleware

    async def show(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    routes = [Route("/donations", show), Route("/donations/{donation_id:int}", show)]
    return Starlette(routes=routes), Starlette(routes=routes, middleware=[Middleware(OpswatchMiddleware)])


def asgi_runner(app: Any) -> Callable[[int], float]:
    scope_template = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def many(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await app(dict(scope_template), receive, send)
        return time.perf_counter() - start

    return lambda n: asyncio.run(many(n))


# -- Flask and Django (WSGI) -------------------------------------------------------------------------


def wsgi_environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": PATH,
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "bench",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def wsgi_runner(app: Any) -> Callable[[int], float]:
    template = wsgi_environ()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        pass

    def many(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            body = app(dict(template), start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return time.perf_counter() - start

    return many


def flask_apps() -> tuple[Any, Any]:
    from flask import Flask

    from opswatch.integrations.wsgi import instrument_flask

    def build(instrumented: bool) -> Any:
        app = Flask(f"bench_{instrumented}")

        @app.get("/donations/<int:donation_id>")
        def show(donation_id: int) -> str:
            return "ok"

        if instrumented:
            instrument_flask(app)
        return app

    return build(False), build(True)


def django_apps() -> tuple[Any, Any]:
    import django
    from django.conf import settings
    from django.http import HttpResponse
    from django.urls import path

    def show(request: Any, pk: int) -> HttpResponse:
        return HttpResponse("ok")

    global urlpatterns
    urlpatterns = [path("donations/<int:pk>", show)]
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["bench"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
    )
    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    plain = WSGIHandler()
    settings.MIDDLEWARE = ["opswatch.integrations.django.OpswatchMiddleware"]
    return plain, WSGIHandler()


urlpatterns: list[Any] = []


# -- the run -----------------------------------------------------------------------------------------


def measure(bare: Callable[[int], float], wrapped: Callable[[int], float], n: int, repeat: int) -> tuple[float, float]:
    """Best seconds per request of each, over alternating runs (the machine is shared)."""
    bare(max(1, n // 10))
    wrapped(max(1, n // 10))  # warm up: lazy middleware stacks, URL resolver caches
    bare_runs, wrapped_runs = [], []
    for _ in range(repeat):
        bare_runs.append(bare(n))
        wrapped_runs.append(wrapped(n))
    return min(bare_runs) / n, min(wrapped_runs) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with open(os.devnull, "w") as devnull:
        opswatch.init(console=True, stream=devnull, level="info", format="json", capture_stdlib=False)
        rows = []
        for label, build, runner in (
            ("starlette (ASGI)", starlette_apps, asgi_runner),
            ("flask (WSGI)", flask_apps, wsgi_runner),
            ("django (WSGI)", django_apps, wsgi_runner),
        ):
            plain, instrumented = build()
            bare, wrapped = measure(runner(plain), runner(instrumented), args.requests, args.repeat)
            rows.append((label, bare, wrapped))
        opswatch.shutdown()
    print(f"{'app':18} {'without req/s':>14} {'with req/s':>11} {'overhead µs/req':>16} {'ratio':>6}")
    for label, bare, wrapped in rows:
        print(
            f"{label:18} {1 / bare:14,.0f} {1 / wrapped:11,.0f} {(wrapped - bare) * 1e6:16.1f} "
            f"{wrapped / bare:6.2f}x"
        )


if __name__ == "__main__":
    main()
