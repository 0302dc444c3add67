"""Slow, stuck and too many clients, on raw sockets against a real ``opswatch serve``.

The limits are settings (``OPSWATCH_HEADER_TIMEOUT``, ``OPSWATCH_KEEPALIVE_TIMEOUT``,
``OPSWATCH_MAX_CONNECTIONS``, ``OPSWATCH_BODY_TIMEOUT``), set small here so the tests are quick. A
socket the server closed reads ``b""``; the sockets' own timeout (30 s) only catches a server that
never closes, which is the failure.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from served import Served, served

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(
        tmp_path_factory.mktemp("connections"),
        OPSWATCH_HEADER_TIMEOUT="1",
        OPSWATCH_KEEPALIVE_TIMEOUT="1",
        OPSWATCH_BODY_TIMEOUT="1",
    ) as running:
        yield running


def connect(server: Served) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=30)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while True:
        more = sock.recv(65536)
        if not more:
            return received
        received += more


def test_it_closes_a_connection_that_sends_nothing(server: Served) -> None:
    with connect(server) as sock:
        assert read_until_closed(sock) == b""


def test_it_closes_a_connection_that_stops_halfway_through_its_headers(server: Served) -> None:
    with connect(server) as sock:
        sock.sendall(f"POST /api/{server.project_id}/events/ HTTP/1.1\r\nHost: x\r\nContent-Le".encode())
        assert read_until_closed(sock) == b""


def test_it_closes_a_kept_alive_connection_whose_next_request_stalls(server: Served) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHo")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.count(b"HTTP/1.1 ") == 1  # the second request never completed


def test_it_closes_an_idle_kept_alive_connection(server: Served) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 200")


def test_it_answers_408_to_an_ingest_body_that_never_ends(server: Served) -> None:
    with connect(server) as sock:
        sock.sendall(
            f"POST /api/{server.project_id}/events/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.key}\r\n"
            'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n'.encode()
        )
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_it_answers_503_past_the_most_connections(tmp_path: Path) -> None:
    with served(tmp_path, OPSWATCH_MAX_CONNECTIONS="3", OPSWATCH_HEADER_TIMEOUT="60") as server:
        with contextlib.ExitStack() as stack:
            idle = [stack.enter_context(connect(server)) for _ in range(3)]
            with connect(server) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                refused = read_until_closed(sock)
            assert refused.startswith(b"HTTP/1.1 503"), refused[:200]
            for sock in idle:
                sock.close()
        answer = b""
        deadline = time.monotonic() + 30
        while not answer.startswith(b"HTTP/1.1 200") and time.monotonic() < deadline:
            with connect(server) as sock:  # room again once the server has seen them go
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
