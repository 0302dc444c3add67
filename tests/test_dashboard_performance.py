"""The Performance page: RED metrics per operation from spans sent as OTLP/JSON to a real server."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opswatch.server.testing import RunningServer, running_server
from test_dashboard_traces import MS, send_spans, span


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        yield running


def get(server: RunningServer, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}/performance", params=params, headers=server.admin_headers, timeout=60)


def send_operations(server: RunningServer) -> None:
    base = (time.time_ns() // MS - 600_000) * MS  # ten minutes ago
    report = [span(f"{i:032x}", f"{i:016x}", "", "GET /report", i, i + 200 * i, base, error=i in (3, 7))
              for i in range(1, 21)]  # fmt: skip
    query = [span(f"{100 + i:032x}", f"{100 + i:016x}", "", "SELECT donations", i, i + 100 * i, base,
                  **{"db.system": "postgresql"}) for i in range(1, 11)]  # fmt: skip
    for made in query:
        made["kind"] = 3  # client
    stripe = [span(f"{200 + i:032x}", f"{200 + i:016x}", "", "POST stripe", i, i + 100, base) for i in range(5)]
    for made in stripe:
        made["kind"] = 3
    send_spans(server, "api", report + query + stripe)


def table(html: str) -> list[tuple[str, str, list[str]]]:
    """(operation, level, the numeric cells) per row, in page order."""
    found = []
    for row in re.findall(r'<tr class="perf-\w+" (data-operation=.*?)</tr>', html, re.S):
        name, level = re.match(r'data-operation="([^"]*)" data-level="(\w+)"', row).groups()  # type: ignore[union-attr]
        found.append((name, level, re.findall(r'<td class="num[^"]*">([^<]*)</td>', row)))
    return found


def ms(values: list[float], q: float) -> str:
    value = statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1] if q != 0.5 else statistics.median(values)
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


def test_it_lists_operations_slowest_first_with_rate_errors_and_percentiles(server: RunningServer) -> None:
    send_operations(server)
    rows = table(get(server, range="1h").text)
    report = [200.0 * i for i in range(1, 21)]
    query = [100.0 * i for i in range(1, 11)]
    assert rows == [
        ("GET /report", "bad", ["20", f"{20 / 60:.2f}", "10%", ms(report, 0.5), ms(report, 0.95), ms(report, 0.99)]),
        ("SELECT donations", "warn", ["10", f"{10 / 60:.2f}", "0%", ms(query, 0.5), ms(query, 0.95), ms(query, 0.99)]),
        ("POST stripe", "ok", ["5", f"{5 / 60:.2f}", "0%", "100 ms", "100 ms", "100 ms"]),
    ]


def test_it_draws_the_seeds_thresholds_for_each_operations_kind(server: RunningServer) -> None:
    send_operations(server)
    html = get(server).text
    assert "api: 1.0 s / 3.0 s" in html and "db: 500 ms / 2.0 s" in html and "external: 2.0 s / 5.0 s" in html
    report = html[html.index('data-operation="GET /report"'):]
    report = report[: report.index("</tr>")]
    assert 'class="bar-alert"' in report  # a p95 over the critical threshold
    assert "<title>critical: 3.0 s</title>" in report and "<title>slow: 1.0 s</title>" in report


def test_it_filters_by_service_and_refuses_a_bad_range(server: RunningServer) -> None:
    send_operations(server)
    assert "No spans in this range" in get(server, service="billing").text
    assert "GET /report" in get(server, service="api").text
    answer = get(server, range="2y")
    assert answer.status_code == 400 and "range: expected one of" in answer.text
