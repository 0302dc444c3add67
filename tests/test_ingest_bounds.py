"""Poison values are refused at ingest, so no stored value can make a later answer fail.

A check-in with ``duration_ms`` 1e308 used to be stored, and from then on every answer about its monitor
failed with 400 "out of range"; an impossible timestamp was silently replaced by the arrival time. Both
are now refused with a reason for that event, and the good events of the batch are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ingest_helpers import create_monitor, donation, http, post_native, stored
from opswatch.server import limits
from opswatch.server.testing import RunningServer, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("bounds"), retention_days=36500) as running:
        create_monitor(running, "nightly-report")
        yield running


def check_in(**fields: Any) -> dict[str, Any]:
    """The nightly report checks in."""
    return {"kind": "check_in", "monitor_slug": "nightly-report", "status": "ok", **fields}


def reasons(answer: Any) -> list[str]:
    return [item["reason"] for item in answer.json()["rejected"]]


def monitor_answers(server: RunningServer) -> list[int]:
    paths = ("/api/0/monitors/nightly-report", "/api/0/monitors/nightly-report/runs")
    return [http().get(server.url + path, headers=server.admin_headers).status_code for path in paths]


def test_it_refuses_a_check_in_lasting_1e308_ms_and_keeps_the_monitor_answering(server: RunningServer) -> None:
    good = donation()
    answer = post_native(server, [check_in(duration_ms=1e308), good])
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 1
    assert reasons(answer) == ["duration_ms 1e+308 is not a duration between 0 and 3.16224e+10 ms (366 days)"]
    assert good["event_id"] in {r["event_id"] for r in stored(server)}
    assert monitor_answers(server) == [200, 200]


def test_it_refuses_a_sentry_check_in_lasting_1e308_seconds(server: RunningServer) -> None:
    item = {"check_in_id": "c" * 32, "monitor_slug": "nightly-report", "status": "ok", "duration": 1e308}
    event = {"event_id": "e" * 32, "message": "kept", "level": "warning"}
    body = b"\n".join(
        [b"{}", b'{"type":"check_in"}', json.dumps(item).encode(), b'{"type":"event"}', json.dumps(event).encode()]
    )
    answer = http().post(f"{server.url}/api/{server.project_id}/envelope/?sentry_key={server.key}", content=body)
    assert answer.status_code == 200
    assert "e" * 32 in {r["event_id"] for r in stored(server)}
    assert monitor_answers(server) == [200, 200]


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({"duration_ms": limits.MAX_DURATION_MS}, False),
        ({"duration_ms": limits.MAX_DURATION_MS + 1}, True),
        ({"duration_ms": -1}, True),
        ({"duration_ms": 0}, False),
        ({"durationMs": 1e30}, True),
        ({"duration": limits.MAX_DURATION_MS / 1000}, False),
        ({"duration": limits.MAX_DURATION_MS / 1000 + 1}, True),
        ({"duration_ms": "1e308"}, False),  # text is an attribute, not a duration the server reads
    ],
)
def test_it_bounds_durations_at_their_edge(server: RunningServer, fields: dict[str, Any], refused: bool) -> None:
    answer = post_native(server, [check_in(**fields)])
    assert bool(answer.json()["rejected"]) is refused, answer.text
    assert monitor_answers(server) == [200, 200]


def test_it_refuses_an_impossible_timestamp_and_keeps_the_rest(server: RunningServer) -> None:
    impossible = donation(timestamp="2026-02-30T25:61:61.999Z")
    good = donation()
    answer = post_native(server, [impossible, good])
    assert answer.status_code == 200
    assert reasons(answer) == ["timestamp '2026-02-30T25:61:61.999Z' is not RFC 3339"]
    ids = {r["event_id"] for r in stored(server)}
    assert good["event_id"] in ids and impossible["event_id"] not in ids


@pytest.mark.parametrize("stamp", ["2026-02-29T10:00:00.000Z", "2026-13-01T10:00:00.000Z", "2026-01-01T24:00:00.000Z"])
def test_it_refuses_every_impossible_canonical_timestamp(server: RunningServer, stamp: str) -> None:
    answer = post_native(server, [donation(timestamp=stamp)])
    assert answer.status_code == 400
    assert reasons(answer) == [f"timestamp {stamp!r} is not RFC 3339"]
