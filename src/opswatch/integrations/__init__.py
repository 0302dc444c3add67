"""Web-framework integrations, each a few lines to install:

- ASGI (Starlette, FastAPI): ``app.add_middleware(opswatch.integrations.asgi.OpswatchMiddleware)``
- WSGI / Flask: ``opswatch.integrations.wsgi.instrument_flask(app)`` or ``OpswatchWSGIMiddleware(app)``
- Django: ``"opswatch.integrations.django.OpswatchMiddleware"`` first in ``MIDDLEWARE``

All three share ``_core``: request ids, ``traceparent``, context for the request, a measurement with the
API thresholds, and unhandled exceptions logged once. Framework modules are imported only when used.
"""
