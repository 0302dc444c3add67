"""The trace pages in real Chromium (the fixtures and the skip/fail rule of ``test_dashboard_browser``):
search on ``/traces``, click into a trace, open a span's attributes in the waterfall."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opswatch.server.testing import RunningServer, running_server
from test_dashboard_browser import browser, log_in, page, shoot  # noqa: F401 (fixtures used by name)
from test_dashboard_traces import TRACE, checkout_trace

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says so
    expect = None

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("trace-browser")) as running:
        checkout_trace(running)
        yield running


def test_it_finds_a_trace_opens_it_and_shows_a_spans_attributes(page: Any, server: RunningServer) -> None:  # noqa: F811
    log_in(page, server, "/traces")
    page.get_by_label("Status").select_option("error")
    page.get_by_role("button", name="Search").click()
    page.wait_for_load_state()
    assert "status=error" in page.url
    shoot(page, "traces")
    page.get_by_role("link", name="GET /checkout").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/traces/{TRACE}")
    waterfall = page.get_by_label("waterfall")
    expect(waterfall.locator("details.span")).to_have_count(6)
    expect(waterfall.locator("details.span.error .err-mark")).to_have_count(2)
    charge = page.locator("#span-d000000000000004")
    expect(charge.get_by_text("stripe")).to_be_hidden()
    charge.locator("summary").click()
    expect(charge.get_by_text("stripe")).to_be_visible()
    expect(charge.get_by_text("payment.provider")).to_be_visible()
    box = charge.locator("rect").bounding_box()
    lane = charge.locator("svg").bounding_box()
    assert box is not None and lane is not None
    assert abs((box["x"] - lane["x"]) / lane["width"] - 0.40) < 0.01  # charge card starts 40 ms into 100 ms
    expect(page.get_by_role("cell", name="card declined by bank")).to_be_visible()
    shoot(page, "trace")


def test_the_traces_link_in_a_log_row_opens_the_trace(page: Any, server: RunningServer) -> None:  # noqa: F811
    log_in(page, server, "/logs")
    page.locator(f'a.trace-link[href="/traces/{TRACE}"]').first.click()
    page.wait_for_load_state()
    expect(page.get_by_role("heading", name="GET /checkout")).to_be_visible()


def test_the_performance_page_lists_operations_and_links_to_their_traces(page: Any, server: RunningServer) -> None:  # noqa: F811
    log_in(page, server, "/")
    page.get_by_role("link", name="Performance").click()
    page.wait_for_load_state()
    row = page.locator('tr[data-operation="POST payments"]')
    expect(row.get_by_role("cell", name="100%")).to_be_visible()  # its one span is an error
    expect(page.locator("svg.perf-chart")).to_have_count(6)
    shoot(page, "performance")
    row.get_by_role("link", name="POST payments").click()
    page.wait_for_load_state()
    expect(page.get_by_role("link", name="GET /checkout")).to_be_visible()
