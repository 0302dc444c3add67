"""The real ``@sentry/node`` 11 from npm (``tests/node_sentry/package.json``, installed by ``.ci/run``)
sending a trace to a real server, both ways it can: span streaming (its default: ``span`` items) and
``traceLifecycle: 'static'`` (a classic transaction). Either way the store holds the same three spans
with their parents, kinds, environment and release. Without ``node`` or the package the tests skip with
the reason on a developer's machine, and fail under ``CI=true``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from opswatch.server.query import run_query
from opswatch.server.testing import running_server

FOLDER = Path(__file__).parent / "node_sentry"


def require_node() -> str:
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "node is not installed"
    elif not (FOLDER / "node_modules" / "@sentry" / "node").is_dir():
        reason = "@sentry/node is not installed (cd tests/node_sentry && npm ci)"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    assert node is not None
    return node


@pytest.mark.parametrize("lifecycle", ["stream", "static"])
def test_sentry_node_sends_a_trace_that_is_stored_as_spans(tmp_path: Path, lifecycle: str) -> None:
    node = require_node()
    with running_server(tmp_path) as server:
        sent = subprocess.run(
            [node, str(FOLDER / "send_spans.mjs")],
            env={**os.environ, "OPSWATCH_DSN": server.dsn, "TRACE_LIFECYCLE": lifecycle},
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        trace_id = sent.stdout.strip().splitlines()[-1]
        rows = run_query(
            server.ctx.store,
            f"SELECT span_id, parent_span_id, name, kind, status, environment, release, "
            f"attributes->>'$.\"db.system\"' FROM spans WHERE trace_id = '{trace_id}'",
        ).rows
    by_name = {row[2]: row for row in rows}
    assert sorted(by_name) == ["GET /orders", "SELECT orders", "render"]
    root = by_name["GET /orders"]
    assert root[1] is None and root[3:7] == ("server", "ok", "production", "web@3.0.0")
    assert by_name["SELECT orders"][1] == root[0] and by_name["SELECT orders"][3] == "client"
    assert by_name["SELECT orders"][7] == "postgresql"
    assert by_name["render"][1] == root[0] and by_name["render"][3] == "internal"
