"""Decompression bombs and hostile bodies, measured on the server process (``opswatch serve``).

An anonymous request costs the server at most ``MAX_UNAUTHENTICATED_BYTES`` read and inflated: the key is
checked (from the headers, the URL, or a tunnelled envelope's first line) before the body is taken. An
authenticated bomb is inflated up to its endpoint's limit and no further. Memory is the server's
``VmHWM`` (peak resident set), read from ``/proc``: the test process's own allocations do not count.
"""

from __future__ import annotations

import concurrent.futures
import functools
import gzip
import socket
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import brotli
import orjson
import pytest
import zstandard

from ingest_helpers import donation, http, ndjson
from opswatch.server import limits
from opswatch.server.testing import running_server
from opswatch.testing import capture_logs
from served import Served, served

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
GiB = 1024 * MiB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("bombs")) as running:
        _warm_up(running)
        yield running


def _warm_up(server: Served) -> None:
    """One request of each kind, so lazy imports and first allocations are not counted as the bomb's."""
    assert http().get(f"{server.url}/healthz").status_code == 200
    body = zlib.compress(orjson.dumps({"dsn": f"http://{server.key}@x/1"}) + b"\n")
    for _ in range(3):
        answer = http().post(
            f"{server.url}/api/{server.project_id}/envelope/",
            content=body,
            headers={"Content-Encoding": "deflate"},
        )
        assert answer.status_code == 200, answer.text


@functools.cache
def deflate_bomb(size: int = GiB, header: bytes = b"") -> bytes:
    """``header`` then ``size`` zero bytes, zlib-compressed (about a thousandth of ``size``)."""
    compressor = zlib.compressobj(1)
    chunk = b"\0" * MiB
    return (
        compressor.compress(header)
        + b"".join(compressor.compress(chunk) for _ in range(size // MiB))
        + (compressor.flush())
    )


@functools.cache
def bomb(encoding: str) -> bytes:
    """A gibibyte of zeros in ``encoding``, in a few MiB at most."""
    if encoding == "gzip":
        member = gzip.compress(b"\0" * (64 * MiB), 1)
        return member * 16
    if encoding == "zstd":
        return zstandard.ZstdCompressor(level=1).compress(b"\0" * (64 * MiB)) * 16
    if encoding == "br":
        compressor = brotli.Compressor(quality=1)
        chunk = b"\0" * MiB
        return b"".join(compressor.process(chunk) for _ in range(1024)) + compressor.finish()
    return deflate_bomb()


def post_raw(server: Served, path: str, head: str, body: bytes, *, close_after: bool = False) -> bytes:
    """Send a request's headers and ``body`` on a plain socket; the answer's first bytes (or b"")."""
    with socket.create_connection((server.host, server.port), timeout=60) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {server.host}\r\n{head}\r\n".encode() + body)
        if close_after:
            return b""
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
        return answer


def _length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


# -- anonymous bombs --------------------------------------------------------------------------------


def test_it_refuses_an_anonymous_bomb_after_reading_only_its_first_bytes(server: Served) -> None:
    body = deflate_bomb()
    before = server.peak_rss_mib()
    # The headers promise the whole bomb; only the first 64 KiB are sent. The answer comes anyway: the
    # server did not wait for (let alone inflate) the rest.
    answer = post_raw(
        server,
        f"/api/{server.project_id}/envelope/",
        f"Content-Encoding: deflate\r\nContent-Length: {len(body)}\r\n",
        body[: 64 * 1024],
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"no ingest key" in answer
    assert server.peak_rss_mib() - before < 16


def test_it_refuses_a_whole_anonymous_bomb_without_growing(server: Served) -> None:
    before = server.peak_rss_mib()
    for encoding in ("deflate", "gzip", "br", "zstd"):
        answer = http().post(
            f"{server.url}/api/{server.project_id}/envelope/",
            content=bomb(encoding),
            headers={"Content-Encoding": encoding},
        )
        assert answer.status_code == 401, (encoding, answer.text)
    # A gibibyte each if inflated; the server grew by at most a few MiB of buffers.
    assert server.peak_rss_mib() - before < 32


def test_it_refuses_a_bomb_whose_first_line_names_a_wrong_key(server: Served) -> None:
    header = orjson.dumps({"dsn": f"http://{'0' * 32}@x/{server.project_id}"}) + b"\n"
    before = server.peak_rss_mib()
    answer = http().post(
        f"{server.url}/api/{server.project_id}/envelope/",
        content=deflate_bomb(GiB, header),
        headers={"Content-Encoding": "deflate"},
    )
    assert answer.status_code == 401
    assert "not a valid ingest key" in answer.json()["detail"]
    assert server.peak_rss_mib() - before < 32


def test_it_keeps_answering_health_checks_while_bombs_arrive(server: Served) -> None:
    body = deflate_bomb()

    def send() -> int:
        return (
            http()
            .post(
                f"{server.url}/api/{server.project_id}/envelope/",
                content=body,
                headers={"Content-Encoding": "deflate"},
            )
            .status_code
        )

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        bombs = [pool.submit(send) for _ in range(4)]
        health = [http().get(f"{server.url}/healthz").status_code for _ in range(20)]
        assert [b.result() for b in bombs] == [401] * 4
    assert health == [200] * 20


def test_it_takes_a_tunnelled_envelope_whose_key_is_in_its_first_line(server: Served) -> None:
    event = {"event_id": "a" * 32, "message": "tunnelled", "level": "error"}
    envelope = b"\n".join(
        [
            orjson.dumps({"dsn": f"http://{server.key}@x/{server.project_id}", "event_id": "a" * 32}),
            orjson.dumps({"type": "event"}),
            orjson.dumps(event),
        ]
    )
    for encoding, body in (
        ("identity", envelope),
        ("gzip", gzip.compress(envelope)),
        ("br", brotli.compress(envelope)),
    ):
        answer = http().post(
            f"{server.url}/api/{server.project_id}/envelope/",
            content=body,
            headers={"Content-Encoding": encoding},
        )
        assert answer.status_code == 200, (encoding, answer.text)
        assert answer.json()["id"] == "a" * 32


# -- authenticated bombs: inflated to the endpoint's limit, never further ------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_it_stops_an_authenticated_bomb_at_the_limit(tmp_path: Path, encoding: str) -> None:
    body = bomb(encoding)
    assert len(body) < 8 * MiB
    with served(tmp_path) as server:
        _warm_up(server)
        before = server.peak_rss_mib()
        for endpoint in ("events", "envelope"):
            answer = http().post(
                f"{server.url}/api/{server.project_id}/{endpoint}/?sentry_key={server.key}",
                content=body,
                headers={"Authorization": f"Bearer {server.key}", "Content-Encoding": encoding},
            )
            assert answer.status_code == 413, (endpoint, answer.text)
            assert "decompressed" in answer.json()["detail"]
        grown = server.peak_rss_mib() - before
    # Inflating the whole gibibyte would add 1024 MiB; the Sentry limit (200 MiB) is the most taken.
    assert limits.MAX_DECOMPRESSED_BYTES / MiB <= 200
    assert grown < 450, grown


# -- slow, stuck and vanishing clients ------------------------------------------------------------------


def test_it_answers_408_to_a_chunked_body_that_never_ends(tmp_path: Path) -> None:
    with served(tmp_path, OPSWATCH_BODY_TIMEOUT="1") as server:
        answer = post_raw(
            server,
            f"/api/{server.project_id}/events/",
            f"Authorization: Bearer {server.key}\r\nTransfer-Encoding: chunked\r\n",
            b"10\r\n" + ndjson([donation()])[:16] + b"\r\n",  # one chunk, then nothing
        )
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"did not arrive within 1 s" in answer


def test_it_counts_a_client_that_leaves_mid_body_as_499_without_an_error(tmp_path: Path) -> None:
    with running_server(tmp_path) as server, capture_logs("warn") as logged:
        host, port = server.url.split("//")[1].split(":")
        target = Served(server.url, host, int(port), server.admin_token, server.key, server.project_id, 0)
        done = threading.Event()
        post_raw(
            target,
            f"/api/{server.project_id}/events/",
            f"Authorization: Bearer {server.key}\r\nContent-Length: 100000\r\n",
            b'{"message": "cut',
            close_after=True,
        )
        metrics = ""
        for _ in range(200):
            metrics = http().get(f"{server.url}/metrics").text
            if 'status="499"' in metrics:
                done.set()
                break
            threading.Event().wait(0.05)
        assert done.is_set(), metrics
        assert 'opswatch_ingest_requests_total{endpoint="native",status="499"} 1' in metrics
        assert 'status="500"' not in metrics
    assert [r for r in logged if r.get("level") in ("error", "fatal")] == []
