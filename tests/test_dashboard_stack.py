"""Stack frames on the issue page: the app's frames with their source, library frames folded, short paths.

The cast: the donations service charges a card through ``opswatch.track_performance`` and ``json``
(library frames around the app's own), once through opswatch's SDK and once through the real
sentry-sdk, both shipping to a real server; the page is read over HTTP with the admin token.
"""

from __future__ import annotations

import html as html_text
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sentry_sdk

import opswatch
from opswatch.server.testing import RunningServer, running_server
from opswatch.server.ui.pages import exception_chain, stack_frames

pytestmark = pytest.mark.slow


class CardDeclinedError(Exception):
    pass


class RefundRefusedError(Exception):
    pass


def charge_card() -> None:
    amount = 100  # the line before the raise
    raise CardDeclinedError(f"card declined for ${amount}")


def refund() -> None:
    # the refund was for card 4242 4242 4242 4242 of ann@example.com (the source says so: redacted)
    reason = "too late"
    raise RefundRefusedError(f"refund refused: {reason}")


def through_libraries(function: Any) -> None:
    """Call ``function`` from inside opswatch and the standard library, as real stacks are."""
    json.loads("{}", object_hook=lambda _: opswatch.track_performance("donations.charge", function))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("stack")) as running:
        spool = str(running.settings.data_dir / "sdk-spool")
        opswatch.init(dsn=running.dsn, service="donations-api", console=False, capture_stdlib=False, spool_dir=spool)
        try:
            try:
                through_libraries(charge_card)
            except CardDeclinedError as err:
                opswatch.get_logger("donations").error("Payment failed", error=err)
            # An error without an exception: its culprit is its operation.
            opswatch.get_logger("refunds").error("Refund queue stalled", operation="refunds.queue")
            assert opswatch.flush(10)
        finally:
            opswatch.shutdown()
        sentry_sdk.init(dsn=running.dsn, default_integrations=False, auto_session_tracking=False,
                        send_client_reports=False)
        try:
            try:
                through_libraries(refund)
            except RefundRefusedError as err:
                sentry_sdk.capture_exception(err)
            sentry_sdk.flush(timeout=30)
        finally:
            sentry_sdk.get_client().close(timeout=5)
            sentry_sdk.get_global_scope().set_client(None)
        yield running


def issue_page(server: RunningServer, title_part: str) -> str:
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=30, trust_env=False) as http:
        while True:
            items = http.get(f"{server.url}/api/0/issues?status=all", headers=server.admin_headers).json()["items"]
            found = [item["id"] for item in items if title_part in item["title"]]
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert found, items
        answer = http.get(f"{server.url}/issues/{found[0]}", headers=server.admin_headers)
        assert answer.status_code == 200
        return html_text.unescape(answer.text)


@pytest.mark.parametrize(("title", "raising_line"), [
    ("CardDeclinedError", 'raise CardDeclinedError(f"card declined for ${amount}")'),
    ("RefundRefusedError", 'raise RefundRefusedError(f"refund refused: {reason}")'),
])
def test_it_shows_the_apps_frames_with_their_source_and_folds_library_frames(
    server: RunningServer, title: str, raising_line: str
) -> None:
    page = issue_page(server, title)
    lines = re.findall(r'<tr class="current"><td class="lineno">(\d+)</td><td><pre>(.*?)</pre>', page)
    assert lines and lines[-1][1].strip() == raising_line  # the innermost frame: the one that raised
    assert "through_libraries(" in lines[0][1]
    assert "<pre>    " in page  # the lines around it, indentation kept
    folded = re.findall(r'<details class="lib-frames">\s*<summary>(\d+) library frames? <span class="muted">([^<]*)</span>', page)
    assert folded, page
    packages = {name for _, names in folded for name in names.split(", ")}
    assert "json" in packages
    assert "library frame" in page and "folded" in page
    assert "tests/test_dashboard_stack.py" in page or "test_dashboard_stack.py" in page


def test_it_shows_the_sdks_paths_relative_to_the_project_root(server: RunningServer) -> None:
    page = issue_page(server, "CardDeclinedError")
    assert '<code class="path">tests/test_dashboard_stack.py</code>' in page
    assert '<code class="path">opswatch/perf/_track.py</code>' in page
    assert str(Path.cwd()) not in page


def test_it_marks_installed_packages_the_standard_library_and_opswatch_as_library_frames() -> None:
    frames = stack_frames([
        {"file": "/srv/app/shop/cart.py", "line": 3, "function": "add", "module": "shop.cart", "in_app": True},
        {"file": "/srv/app/src/opswatch/perf/_track.py", "line": 66, "function": "run", "module": "opswatch.perf._track"},
        {"file": "/venv/lib/python3.11/site-packages/stripe/api.py", "line": 9, "function": "post", "in_app": True},
        {"file": "/usr/lib/python3.11/json/decoder.py", "line": 2, "function": "decode"},
        {"file": "app.py", "line": 1, "function": "main", "in_app": False},
    ])
    assert [frame["library"] for frame in frames] == [False, True, True, True, True]
    assert [frame["path"] for frame in frames][:4] == ["shop/cart.py", "opswatch/perf/_track.py", "stripe/api.py", "json/decoder.py"]


def test_it_folds_nothing_when_no_frame_is_the_apps() -> None:
    (exc,) = exception_chain({"type": "E", "message": "m", "stack": [
        {"file": "json/decoder.py", "line": 2, "function": "decode", "in_app": False},
    ]})
    assert exc["folded"] == 0 and [segment["fold"] for segment in exc["segments"]] == [False]


def test_it_numbers_the_source_lines_from_the_frames_line() -> None:
    (frame,) = stack_frames([{"file": "a.py", "line": 10, "function": "f", "in_app": True,
                              "pre_context": ["a", "b"], "context_line": "c", "post_context": ["d"]}])
    assert frame["source"] == [(8, "a", False), (9, "b", False), (10, "c", True), (11, "d", False)]


def test_it_names_the_operation_once_when_it_is_the_culprit(server: RunningServer) -> None:
    page = issue_page(server, "Refund queue stalled")
    head = page.split('<section class="stats">')[0]
    assert head.count("refunds.queue") == 1
    with httpx.Client(timeout=30, trust_env=False) as http:
        listing = http.get(f"{server.url}/issues?query=stalled", headers=server.admin_headers).text
    row = listing.split("<tbody>")[1].split("</tbody>")[0]
    assert row.count("refunds.queue") == 1


def test_it_redacts_the_source_lines_that_a_sentry_sdk_sent(server: RunningServer) -> None:
    page = issue_page(server, "RefundRefusedError")
    assert "the refund was for card" in page
    assert "4242 4242 4242 4242" not in page and "ann@example.com" not in page


def test_it_opens_the_source_of_the_frame_that_raised_and_folds_the_others() -> None:
    def frame(line: int, in_app: bool) -> dict[str, Any]:
        return {"file": "a.py", "line": line, "function": "f", "in_app": in_app,
                "pre_context": ["x"], "context_line": f"line {line}", "post_context": ["y"]}

    (exc,) = exception_chain({"type": "E", "stack": [frame(1, True), frame(2, True), frame(3, False)]})
    assert [f["expanded"] for f in exc["frames"]] == [False, True, False]
