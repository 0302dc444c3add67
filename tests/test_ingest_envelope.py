"""Sentry envelopes in the shapes other SDKs send (recorded from the Node SDK), and broken ones.

The Node SDK streams its body (``Transfer-Encoding: chunked``, no Content-Length, no Content-Type),
gzips only above 32 KiB, writes float timestamps, puts the key in the query string and no ``length`` on
JSON items. Unknown item types must be skipped without losing the rest.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import brotli
import httpx
import orjson
import pytest
import zstandard

from ingest_helpers import donation, http, stored_by_id
from opswatch.server.testing import RunningServer, running_server

NODE_SDK = {"name": "sentry.javascript.node", "version": "9.12.0"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("envelope"), retention_days=36500) as running:
        yield running


def new_id() -> str:
    return str(donation()["event_id"])


def node_error(event_id: str, **extra: Any) -> dict[str, Any]:
    """What @sentry/node sends for an uncaught TypeError in an Express handler."""
    return {
        "exception": {
            "values": [
                {
                    "type": "TypeError",
                    "value": "Cannot read properties of undefined (reading 'id')",
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "/app/node_modules/express/lib/router/layer.js",
                                "module": "express.lib.router:layer",
                                "function": "Layer.handle [as handle_request]",
                                "lineno": 95,
                                "colno": 5,
                                "in_app": False,
                            },
                            {
                                "filename": "/app/src/donations.js",
                                "module": "donations",
                                "function": "createDonation",
                                "lineno": 42,
                                "colno": 17,
                                "in_app": True,
                                "pre_context": ["async function createDonation(req, res) {"],
                                "context_line": "  const id = church.id;",
                                "post_context": ["}"],
                            },
                        ]
                    },
                    "mechanism": {"type": "onuncaughtexception", "handled": False},
                }
            ]
        },
        "level": "fatal",
        "event_id": event_id,
        "platform": "node",
        "contexts": {
            "trace": {"trace_id": TRACE_ID, "span_id": "a3ce929d0e0e4736"},
            "runtime": {"name": "node", "version": "v20.11.0"},
        },
        "server_name": "web-2",
        "timestamp": 1761962400.123,
        "environment": "production",
        "release": "donations@2.0.0",
        "sdk": NODE_SDK,
        "tags": {"operation": "donations.create"},
        "request": {
            "method": "POST",
            "url": "http://localhost:3000/donations",
            "headers": {"content-type": "application/json", "cookie": "session=abc123"},
        },
        "breadcrumbs": [{"timestamp": 1761962399.9, "category": "http", "message": "POST /donations"}],
        **extra,
    }


def envelope(
    header: dict[str, Any],
    *items: tuple[dict[str, Any], bytes | dict[str, Any]],
    trailing_newline: bool = False,
) -> bytes:
    lines = [orjson.dumps(header)]
    for item_header, payload in items:
        lines.append(orjson.dumps(item_header))
        lines.append(payload if isinstance(payload, bytes) else orjson.dumps(payload))
    return b"\n".join(lines) + (b"\n" if trailing_newline else b"")


def streamed(body: bytes) -> Iterator[bytes]:
    """The body in 16 KiB pieces: httpx then sends it chunked, without a Content-Length."""
    for start in range(0, len(body), 16384):
        yield body[start : start + 16384]


def send_like_node(
    server: RunningServer,
    body: bytes,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    path: str = "envelope",
) -> httpx.Response:
    """POST the way @sentry/node does: key in the query, chunked, no Content-Length/Type; gzip > 32 KiB."""
    sent = dict(headers or {})
    if len(body) > 32 * 1024 and "Content-Encoding" not in sent:
        body = gzip.compress(body)
        sent["Content-Encoding"] = "gzip"
    query = f"sentry_key={server.key if key is None else key}&sentry_version=7&sentry_client=sentry.javascript.node%2F9.12.0"
    request = http().build_request(
        "POST", f"{server.url}/api/{server.project_id}/{path}/?{query}", content=streamed(body), headers=sent
    )
    assert "content-length" not in request.headers and "content-type" not in request.headers
    return http().send(request)


def test_it_stores_a_node_error_sent_chunked_with_no_length_and_no_content_type(
    server: RunningServer,
) -> None:
    event_id = new_id()
    body = envelope(
        {"event_id": event_id, "sent_at": "2025-11-01T02:00:00.200Z", "sdk": NODE_SDK},
        ({"type": "event"}, node_error(event_id)),
    )
    answer = send_like_node(server, body)
    assert answer.status_code == 200
    assert answer.json() == {"id": event_id}
    record = stored_by_id(server)[event_id]
    assert record["kind"] == "error"
    assert record["level"] == "fatal"
    assert record["timestamp"] == "2025-11-01T02:00:00.123Z"
    assert record["error"]["type"] == "TypeError"
    assert record["error"]["handled"] is False
    frames = record["error"]["stack"]
    assert frames[-1] == {
        "file": "/app/src/donations.js",
        "line": 42,
        "function": "createDonation",
        "module": "donations",
        "in_app": True,
        "column": 17,
        "context_line": "  const id = church.id;",
        "pre_context": ["async function createDonation(req, res) {"],
        "post_context": ["}"],
    }
    assert frames[0]["in_app"] is False
    assert record["message"] == "TypeError: Cannot read properties of undefined (reading 'id')"
    assert record["trace_id"] == TRACE_ID
    assert record["host"] == "web-2"
    assert record["operation"] == "donations.create"
    assert record["request"]["headers"]["cookie"] == "[REDACTED]"
    assert record["sdk"] == "sentry.javascript.node/9.12.0"


def test_it_takes_a_gzipped_node_envelope_above_32_kib(server: RunningServer) -> None:
    event_id = new_id()
    crumbs = [
        {"timestamp": 1761962399.0 + i, "category": "console", "message": f"step {i} " + "x" * 100}
        for i in range(400)
    ]
    body = envelope({"event_id": event_id}, ({"type": "event"}, node_error(event_id, breadcrumbs=crumbs)))
    assert len(body) > 32 * 1024
    answer = send_like_node(server, body)
    assert answer.status_code == 200
    assert len(stored_by_id(server)[event_id]["breadcrumbs"]) == 50  # the latest 50 are kept


def test_it_maps_a_captured_message_with_a_synthetic_exception_as_a_message(server: RunningServer) -> None:
    event_id = new_id()
    event = {
        "event_id": event_id,
        "level": "info",
        "message": "Webhook retried",
        "timestamp": 1761962400.5,
        "platform": "node",
        "exception": {
            "values": [
                {
                    "value": "Webhook retried",
                    "mechanism": {"type": "generic", "synthetic": True},
                    "stacktrace": {
                        "frames": [{"filename": "/app/src/hooks.js", "lineno": 7, "function": "retry"}]
                    },
                }
            ]
        },
    }
    send_like_node(server, envelope({"event_id": event_id}, ({"type": "event"}, event)))
    record = stored_by_id(server)[event_id]
    assert record["kind"] == "log"
    assert record["message"] == "Webhook retried"
    assert "error" not in record
    assert record["stack"][0]["function"] == "retry"


def test_it_stores_logs_in_the_older_container_shape_and_the_versioned_one(server: RunningServer) -> None:
    older = {
        "items": [
            {
                "timestamp": 1761962401.25,
                "level": "warn",
                "body": "Slow query",
                "trace_id": TRACE_ID,
                "severity_number": 13,
                "attributes": {
                    "sentry.environment": {"value": "production", "type": "string"},
                    "db.duration_ms": {"value": 812.5, "type": "double"},
                    "church_id": {"value": "church_7", "type": "string"},
                },
            }
        ]
    }
    versioned = {
        "version": 2,
        "items": [
            {
                "timestamp": 1761962402.0,
                "level": "info",
                "body": "Cache warmed",
                "attributes": {"entries": {"value": 1200, "type": "integer"}},
            }
        ],
    }
    body = envelope(
        {"sdk": NODE_SDK},
        ({"type": "log", "item_count": 1, "content_type": "application/vnd.sentry.items.log+json"}, older),
        (
            {"type": "log", "item_count": 1, "content_type": "application/vnd.sentry.items.log+json"},
            versioned,
        ),
    )
    answer = send_like_node(server, body)
    assert answer.status_code == 200
    assert answer.json() == {}
    by_message = {r["message"]: r for r in stored_by_id(server).values()}
    slow = by_message["Slow query"]
    assert slow["kind"] == "log" and slow["level"] == "warn"
    assert slow["timestamp"] == "2025-11-01T02:00:01.250Z"
    assert slow["environment"] == "production"
    assert slow["db.duration_ms"] == 812.5
    assert slow["church_id"] == "church_7"
    assert slow["trace_id"] == TRACE_ID
    assert by_message["Cache warmed"]["entries"] == 1200


def test_it_stores_the_same_log_container_once_when_it_is_sent_twice(server: RunningServer) -> None:
    container = {"items": [{"timestamp": 1761962403.0, "level": "info", "body": "sent twice, stored once"}]}
    body = envelope({}, ({"type": "log"}, container))
    send_like_node(server, body)
    send_like_node(server, body)
    matches = [r for r in stored_by_id(server).values() if r["message"] == "sent twice, stored once"]
    assert len(matches) == 1


def test_it_skips_unknown_items_and_keeps_the_rest(server: RunningServer) -> None:
    event_id = new_id()
    attachment = b"line one\nline two\n{not json}"
    body = envelope(
        {"event_id": event_id},
        ({"type": "session"}, {"sid": "x", "status": "ok"}),
        ({"type": "attachment", "length": len(attachment), "filename": "log.txt"}, attachment),
        ({"type": "event", "length": len(orjson.dumps(node_error(event_id)))}, node_error(event_id)),
        ({"type": "client_report"}, {"discarded_events": []}),
        ({"type": "some_future_type"}, b"\x00\x01 whatever"),
    )
    answer = send_like_node(server, body)
    assert answer.status_code == 200
    assert event_id in stored_by_id(server)


def test_it_reads_an_envelope_without_a_trailing_newline_and_with_one(server: RunningServer) -> None:
    for trailing in (False, True):
        event_id = new_id()
        body = envelope(
            {"event_id": event_id}, ({"type": "event"}, node_error(event_id)), trailing_newline=trailing
        )
        assert send_like_node(server, body).status_code == 200
        assert event_id in stored_by_id(server)


def test_it_stores_a_check_in_and_a_transaction_from_node(server: RunningServer) -> None:
    check_in = {
        "check_in_id": "83a7c03ed0a04e1b97e2e3b18d38f244",
        "monitor_slug": "node-nightly",
        "status": "error",
        "duration": 1.5,
        "release": "donations@2.0.0",
        "environment": "production",
        "contexts": {"trace": {"trace_id": TRACE_ID}},
    }
    transaction_id = new_id()
    transaction = {
        "event_id": transaction_id,
        "type": "transaction",
        "transaction": "GET /health",
        "start_timestamp": 1761962400.0,
        "timestamp": 1761962400.25,
        "platform": "node",
        "contexts": {
            "trace": {
                "op": "http.server",
                "status": "ok",
                "trace_id": TRACE_ID,
                "span_id": "b3ce929d0e0e4736",
            }
        },
        "spans": [{"op": "db", "description": "SELECT 1"}],
        "measurements": {},
    }
    body = envelope(
        {"event_id": transaction_id}, ({"type": "check_in"}, check_in), ({"type": "transaction"}, transaction)
    )
    answer = send_like_node(server, body)
    assert answer.json() == {"id": transaction_id}
    records = stored_by_id(server)
    (run,) = [r for r in records.values() if r.get("monitor_slug") == "node-nightly"]
    assert run["status"] == "error" and run["level"] == "error" and run["duration_ms"] == 1500.0
    assert run["check_in_id"] == "83a7c03ed0a04e1b97e2e3b18d38f244"
    timed = records[transaction_id]
    assert timed["kind"] == "transaction"
    assert timed["duration_ms"] == 250.0
    assert timed["operation"] == "http.server"
    assert timed["status"] == "ok"


@pytest.mark.parametrize("encoding", ["deflate", "br", "zstd", "gzip"])
def test_it_takes_every_encoding_relay_takes(server: RunningServer, encoding: str) -> None:
    event_id = new_id()
    body = envelope({"event_id": event_id}, ({"type": "event"}, node_error(event_id)))
    packed = {
        "deflate": zlib.compress,
        "br": brotli.compress,
        "gzip": gzip.compress,
        "zstd": zstandard.ZstdCompressor().compress,
    }[encoding](body)
    answer = send_like_node(server, packed, headers={"Content-Encoding": encoding})
    assert answer.status_code == 200
    assert event_id in stored_by_id(server)


def test_it_authenticates_with_the_x_sentry_auth_header_and_the_legacy_store(server: RunningServer) -> None:
    event_id = new_id()
    auth = f"Sentry sentry_key={server.key}, sentry_version=7, sentry_client=raven-python/6.10.0"
    answer = http().post(
        f"{server.url}/api/{server.project_id}/store/",
        content=orjson.dumps(node_error(event_id)),
        headers={"X-Sentry-Auth": auth, "Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    assert answer.json() == {"id": event_id}
    old_id = new_id()
    packed = base64.b64encode(zlib.compress(orjson.dumps(node_error(old_id))))
    assert (
        http()
        .post(f"{server.url}/api/{server.project_id}/store/", content=packed, headers={"X-Sentry-Auth": auth})
        .status_code
        == 200
    )
    records = stored_by_id(server)
    assert event_id in records and old_id in records


def test_it_takes_a_tunnelled_envelope_that_carries_its_dsn(server: RunningServer) -> None:
    event_id = new_id()
    body = envelope({"event_id": event_id, "dsn": server.dsn}, ({"type": "event"}, node_error(event_id)))
    answer = http().post(f"{server.url}/api/{server.project_id}/envelope/", content=body)
    assert answer.status_code == 200
    wrong = envelope(
        {"dsn": server.dsn.replace(server.key, "f" * 32)}, ({"type": "event"}, node_error(new_id()))
    )
    assert http().post(f"{server.url}/api/{server.project_id}/envelope/", content=wrong).status_code == 401


def test_it_refuses_a_wrong_key(server: RunningServer) -> None:
    body = envelope({}, ({"type": "event"}, node_error(new_id())))
    assert send_like_node(server, body, key="0" * 32).status_code == 401
    bare = http().post(f"{server.url}/api/{server.project_id}/envelope/", content=body)
    assert bare.status_code == 401


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json\n{}", "envelope header"),
        (b"[1]\n{}", "envelope header"),
        (b'{}\n{"type": "event"', "header of item 0"),
        (b'{}\n{"type": "event", "length": 500}\n{}', "runs past the end"),
        (b'{}\n{"type": "event", "length": -1}\n{}', "length"),
        (b'{}\n{"type": "event", "length": 2}\n{}garbage', "not followed by a newline"),
    ],
)
def test_it_refuses_broken_framing_with_a_reason(server: RunningServer, body: bytes, reason: str) -> None:
    answer = send_like_node(server, body)
    assert answer.status_code == 400
    assert reason in answer.json()["detail"]


def test_it_keeps_good_items_and_reports_bad_ones_by_index(server: RunningServer) -> None:
    event_id = new_id()
    body = envelope(
        {},
        ({"type": "event"}, b"{broken"),
        ({"type": "event"}, node_error(event_id)),
        ({"type": "check_in"}, {"monitor_slug": "x"}),
        ({"type": "log"}, {"items": "nope"}),
        ({"type": "event"}, node_error(new_id(), level="screaming")),
    )
    answer = send_like_node(server, body)
    assert answer.status_code == 200
    assert answer.json()["id"] == event_id
    assert [r["index"] for r in answer.json()["rejected"]] == [0, 2, 3, 4]
    assert event_id in stored_by_id(server)


def test_it_answers_400_when_no_item_is_valid_and_200_when_there_were_none(server: RunningServer) -> None:
    bad = send_like_node(server, envelope({}, ({"type": "event"}, b"[]")))
    assert bad.status_code == 400
    assert bad.json()["rejected"][0]["index"] == 0
    empty = send_like_node(server, envelope({"sent_at": "2025-11-01T02:00:00Z"}))
    assert empty.status_code == 200
    assert empty.json() == {}


def test_it_uses_the_path_without_a_trailing_slash_too(server: RunningServer) -> None:
    event_id = new_id()
    body = envelope({}, ({"type": "event"}, node_error(event_id)))
    answer = http().post(
        f"{server.url}/api/{server.project_id}/envelope?sentry_key={server.key}", content=body
    )
    assert answer.status_code == 200
