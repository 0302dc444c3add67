"""Every "Critical performance degradation" record links to its trace: listed on the Performance page
(newest first, filtered by service and range), the link opening the trace at the span it was written in;
a record without a trace says so. Records are the SDK's, sent to a real server; the click in Chromium."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from opswatch.server.testing import RunningServer, running_server
from test_dashboard_browser import browser, log_in, page  # noqa: F401 (fixtures used by name)
from test_dashboard_traces import TRACE, checkout_trace

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says so
    expect = None

OTHER_TRACE = "5b8efff798038103d269b633813fc60c"


def critical(minutes_ago: float, operation: str, *, service: str = "checkout", trace: str | None = None,
             span: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A record as ``opswatch.perf`` writes it for a call past its critical threshold."""
    at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=minutes_ago)
    record: dict[str, Any] = {
        "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "level": "error",
        "logger": "perf", "message": "Critical performance degradation", "service": service,
        "operation": f"performance.critical.api.{operation}", "durationMs": 3500, "thresholdMs": 1000,
        "slowdownFactor": "3.50", "duration_ms": 3500.0,
    }  # fmt: skip
    if trace:
        record["trace_id"] = trace
    if span:
        record["span_id"] = span
    return record


def send_records(server: RunningServer, *records: dict[str, Any]) -> None:
    answer = httpx.post(f"{server.url}/api/{server.project_id}/events/",
                        content=b"\n".join(orjson.dumps(r) for r in records),
                        headers={"authorization": f"Bearer {server.key}"})  # fmt: skip
    assert answer.status_code == 200 and answer.json()["accepted"] == len(records), answer.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("perf-links")) as running:
        checkout_trace(running)
        send_records(
            running,
            critical(5, "checkout", trace=TRACE, span="c000000000000003"),
            critical(3, "report", trace=OTHER_TRACE),
            critical(1, "nightly", service="jobs"),
            critical(60 * 30, "old", trace=TRACE),  # 30 hours ago: outside 24 h
            {**critical(2, "warned"), "level": "warn", "message": "Significant performance degradation"},
        )
        yield running


def performance(server: RunningServer, **params: str) -> str:
    answer = httpx.get(f"{server.url}/performance", params=params, headers=server.admin_headers, timeout=60)
    assert answer.status_code == 200
    return answer.text


def critical_rows(html: str) -> list[tuple[str, str]]:
    """(operation, trace cell) per row of the critical records table, in page order."""
    table = html.split('aria-label="critical performance degradation records"', 1)[1].split("</table>", 1)[0]
    return [
        (operation, re.sub(r"\s+", " ", link).strip())
        for operation, link in re.findall(r"<tr>\s*<td[^>]*>[^<]*</td>\s*<td>([^<]*)</td>.*?<td>(.*?)</td>\s*</tr>",
                                          table, re.S)
    ]  # fmt: skip


def test_every_critical_record_of_the_range_is_listed_newest_first_with_its_trace_link(
    server: RunningServer,
) -> None:
    assert critical_rows(performance(server)) == [
        ("performance.critical.api.nightly", '<span class="muted">no trace</span>'),
        ("performance.critical.api.report", f'<a class="trace-link" href="/traces/{OTHER_TRACE}">view trace</a>'),
        ("performance.critical.api.checkout",
         f'<a class="trace-link" href="/traces/{TRACE}#span-c000000000000003">view trace</a>'),
    ]  # fmt: skip


def test_the_critical_records_follow_the_service_and_range_filters(server: RunningServer) -> None:
    assert [op for op, _ in critical_rows(performance(server, service="jobs"))] == [
        "performance.critical.api.nightly"
    ]
    assert len(critical_rows(performance(server, range="7d"))) == 4
    assert "No call went past its critical threshold" in performance(server, service="nobody")


@pytest.mark.slow
def test_a_critical_records_trace_link_opens_the_trace_at_its_span_in_chromium(
    page: Any,  # noqa: F811
    server: RunningServer,
) -> None:
    log_in(page, server, "/performance")
    records = page.get_by_role("table", name="critical performance degradation records")
    records.get_by_role("row").filter(has_text="api.checkout").get_by_role("link", name="view trace").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/traces/{TRACE}#span-c000000000000003")
    expect(page.get_by_role("heading", name="GET /checkout")).to_be_visible()
    expect(page.locator("#span-c000000000000003")).to_be_in_viewport()
