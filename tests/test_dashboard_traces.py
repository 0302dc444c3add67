"""The trace pages: ``/traces`` (search) and ``/traces/<trace_id>`` (the waterfall), on a real server with
spans and log records sent as OTLP/JSON, as an OpenTelemetry exporter sends them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from opswatch.server.testing import RunningServer, running_server

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "0af7651916cd43dd8448eb211c80319c"
MS = 1_000_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        yield running


def span(trace: str, span_id: str, parent: str, name: str, start_ms: float, end_ms: float, base: int,
         error: bool = False, **attributes: str) -> dict[str, Any]:
    made: dict[str, Any] = {
        "traceId": trace, "spanId": span_id, "name": name, "kind": 2 if not parent else 3,
        "startTimeUnixNano": str(base + int(start_ms * MS)), "endTimeUnixNano": str(base + int(end_ms * MS)),
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()],
        "status": {"code": 2, "message": "card declined"} if error else {"code": 1},
    }  # fmt: skip
    if parent:
        made["parentSpanId"] = parent
    return made


def send(server: RunningServer, signal: str, body: dict[str, Any]) -> None:
    answer = httpx.post(
        f"{server.url}/api/{server.project_id}/otlp/v1/{signal}", content=orjson.dumps(body),
        headers={"content-type": "application/json", "authorization": f"Bearer {server.key}"}, timeout=60,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert "partialSuccess" not in answer.json(), answer.text


def send_spans(server: RunningServer, service: str, spans: list[dict[str, Any]]) -> None:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    send(server, "traces", {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]})


def checkout_trace(server: RunningServer) -> int:
    """GET /checkout (100 ms): SELECT cart (5-30, with cache get 10-20 inside), POST payments (35-90, error,
    with charge card 40-85 inside) and audit (36-50, in parallel with the payment). A log record inside
    charge card."""
    base = (time.time_ns() // MS - 60_000) * MS  # whole milliseconds: log records keep no finer time
    send_spans(server, "checkout", [
        span(TRACE, "a000000000000001", "", "GET /checkout", 0, 100, base, **{"http.route": "/checkout"}),
        span(TRACE, "b000000000000002", "a000000000000001", "SELECT cart", 5, 30, base, **{"db.system": "postgresql"}),
        span(TRACE, "e000000000000005", "b000000000000002", "cache get", 10, 20, base),
        span(TRACE, "c000000000000003", "a000000000000001", "POST payments", 35, 90, base, error=True),
        span(TRACE, "f000000000000006", "a000000000000001", "audit", 36, 50, base),
    ])  # fmt: skip
    send_spans(server, "payments", [
        span(TRACE, "d000000000000004", "c000000000000003", "charge card", 40, 85, base, error=True,
             **{"payment.provider": "stripe"}),
    ])  # fmt: skip
    send(server, "logs", {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payments"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": str(base + 60 * MS), "severityNumber": 17, "body": {"stringValue": "card declined by bank"},
             "traceId": TRACE, "spanId": "d000000000000004"},
        ]}]}]})  # fmt: skip
    return base


def get(server: RunningServer, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params=params, headers=server.admin_headers, timeout=60)


def rows(html: str) -> list[dict[str, str]]:
    """The waterfall's span rows, in page order: id, depth and classes."""
    found = re.findall(r'<details class="span([^"]*)" id="span-[0-9a-f]+" data-span-id="([0-9a-f]+)" '
                       r'data-depth="(\d+)">', html)
    return [{"classes": classes, "span_id": span_id, "depth": depth} for classes, span_id, depth in found]


def test_it_nests_the_spans_depth_first_in_start_order(server: RunningServer) -> None:
    checkout_trace(server)
    page = get(server, f"/traces/{TRACE}")
    assert page.status_code == 200
    assert [(row["span_id"][0], row["depth"]) for row in rows(page.text)] == [
        ("a", "0"), ("b", "1"), ("e", "2"), ("c", "1"), ("d", "2"), ("f", "1"),
    ]
    assert "checkout, payments" in page.text
    # POST payments: 35-90 ms of a 100 ms trace, as a bar on the 1000-unit axis
    assert '<rect class="bar-error" x="350.0" y="1" width="550.0" height="10"/>' in page.text


def test_it_marks_the_critical_path_and_the_errors(server: RunningServer) -> None:
    checkout_trace(server)
    marked = {row["span_id"][0]: row["classes"].split() for row in rows(get(server, f"/traces/{TRACE}").text)}
    assert {name for name, classes in marked.items() if "critical" in classes} == {"a", "b", "e", "c", "d"}
    assert {name for name, classes in marked.items() if "error" in classes} == {"c", "d"}
    assert "critical" not in marked["f"]


def test_it_shows_a_spans_attributes_and_the_traces_log_records_on_the_timeline(server: RunningServer) -> None:
    checkout_trace(server)
    html = get(server, f"/traces/{TRACE}").text
    charge = html[html.index('id="span-d000000000000004"'):]
    charge = charge[: charge.index("</details>")]
    assert "payment.provider" in charge and "stripe" in charge and "card declined" in charge
    # 60 ms into a 100 ms trace, on the 1000-unit axis
    assert ('<rect class="log level-error" x="600.0" y="0" width="2" height="12"><title>60 ms error: '
            "card declined by bank</title>") in html
    assert '<a href="#span-d000000000000004"><code>d000000000000004</code></a>' in html


def test_it_searches_traces_by_service_operation_duration_and_status_slowest_first(server: RunningServer) -> None:
    base = checkout_trace(server)
    two_hours_earlier = base - 7200 * 1000 * MS
    send_spans(server, "checkout", [span(OTHER, "1000000000000001", "", "GET /cart", 0, 20, two_hours_earlier)])
    listed = get(server, "/traces").text
    assert listed.index(TRACE) < listed.index(OTHER)
    assert TRACE not in get(server, "/traces", operation="GET /cart").text
    assert OTHER in get(server, "/traces", operation="GET /cart").text
    errors = get(server, "/traces", status="error", service="payments").text
    assert TRACE in errors and OTHER not in errors
    slow = get(server, "/traces", min_ms="50").text
    assert TRACE in slow and OTHER not in slow
    assert "GET /checkout" in slow
    assert "No traces match" in get(server, "/traces", service="nobody's").text
    last_hour = get(server, "/traces", range="1h").text
    assert TRACE in last_hour and OTHER not in last_hour


def test_it_refuses_bad_filters_and_ids_with_the_field_named(server: RunningServer) -> None:
    for params, words in (({"min_ms": "slow"}, "min_ms"), ({"status": "bad"}, "status"), ({"range": "2y"}, "range"),
                          ({"service": "a\\b"}, "service: may not contain a backslash")):
        answer = get(server, "/traces", **params)
        assert answer.status_code == 400 and words in answer.text
    assert get(server, "/traces/not-a-trace").status_code == 400
    assert get(server, f"/traces/{OTHER}").status_code == 404


def test_log_rows_and_an_issues_event_link_to_their_trace(server: RunningServer) -> None:
    checkout_trace(server)
    assert f'href="/traces/{TRACE}"' in get(server, "/logs").text
    issues = get(server, "/api/0/issues", status="all").json()["items"]
    declined = next(item for item in issues if "card declined by bank" in item["title"])
    assert f'href="/traces/{TRACE}"' in get(server, f"/issues/{declined['id']}").text


def test_it_draws_a_trace_of_5000_spans(server: RunningServer) -> None:
    base = time.time_ns() - 60_000 * MS
    spans = [span(TRACE, f"{i + 1:016x}", f"{(i - 1) // 4 + 1:016x}" if i else "", f"op {i}", i * 0.01, 500 - i * 0.01,
                  base, error=i == 4321) for i in range(5000)]  # fmt: skip
    send_spans(server, "big", spans)
    page = get(server, f"/traces/{TRACE}")
    assert page.status_code == 200
    drawn = rows(page.text)
    assert len(drawn) == 5000
    seen: set[int] = set()
    for row in drawn:
        index = int(row["span_id"], 16) - 1
        assert index == 0 or (index - 1) // 4 in seen  # every parent comes before its children
        seen.add(index)
    assert [row["span_id"] for row in drawn if "error" in row["classes"].split()] == [f"{4322:016x}"]


def test_it_draws_spans_whose_parents_form_a_loop(server: RunningServer) -> None:
    base = time.time_ns() - 60_000 * MS
    send_spans(server, "loop", [
        span(TRACE, "a000000000000001", "", "root", 0, 100, base),
        span(TRACE, "b000000000000002", "c000000000000003", "b", 10, 20, base),
        span(TRACE, "c000000000000003", "b000000000000002", "c", 30, 40, base),
    ])  # fmt: skip
    page = get(server, f"/traces/{TRACE}")
    assert page.status_code == 200
    assert sorted(row["span_id"][0] for row in rows(page.text)) == ["a", "b", "c"]
