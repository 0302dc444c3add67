"""The dashboard: server-rendered pages over the same services the HTTP API uses.

The router is ``opswatch.server.api.ui`` (listed in ``ROUTERS``); this package holds what it needs:

* ``session``: who may look (the admin token as a Bearer header, or a signed HttpOnly cookie set by the
  login form or by ``?token=`` once) and the CSRF token every state-changing form carries;
* ``render``: the Jinja2 environment (autoescape on), filters for times and durations, bar charts as
  inline SVG, and the security headers of every page;
* ``overview``, ``pages``: the data each page shows, gathered from the event store (through the
  read-only query layer), the issues service, the monitor service and the notifier;
* ``templates/`` and ``static/`` (one CSS file, a few lines of vanilla JS; no build step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: Where the page templates and the static files live (shipped as package data).
TEMPLATES_DIR: Final = Path(__file__).resolve().parent / "templates"
STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
