"""Client reports on the native endpoint: the drops an SDK reports are counted in ``/metrics``, once."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import orjson

from opswatch.server.ingest.client_report import read
from opswatch.server.testing import running_server


def test_it_reads_known_reasons_and_ignores_everything_else() -> None:
    assert read("queue_full=12, spool_full=3") == {"queue_full": 12, "spool_full": 3}
    assert read("queue_full=12,unstorable=1") == {"queue_full": 12, "unstorable": 1}
    assert read("made_up=5, queue_full=-1, spool_full=x, queue_full=2") == {"queue_full": 2}
    assert read("queue_full=2, queue_full=9") == {"queue_full": 2}  # the first one counts
    assert read("spool_full=" + "9" * 13) == {}  # past MAX_COUNT: not believed
    assert read(None) == {} and read("") == {} and read("x" * 300) == {}


def test_it_counts_a_report_in_metrics_only_with_a_batch_it_stored(tmp_path: Path) -> None:
    body = gzip.compress(orjson.dumps({"message": "after drops", "timestamp": "2026-12-03T10:00:00.000Z"}))
    with running_server(tmp_path) as server:
        url = f"{server.url}/api/{server.project_id}/events/"
        headers = {"Authorization": f"Bearer {server.key}", "Content-Encoding": "gzip"}
        reported = {**headers, "X-Opswatch-Client-Report": "spool_full=7, queue_full=2"}
        assert httpx.post(url, content=body, headers=reported).status_code == 200
        assert httpx.post(url, content=body, headers={**reported, "Authorization": "Bearer wrong"}).status_code == 401

        scrape = httpx.get(f"{server.url}/metrics").text

    project = server.project_id
    assert f'opswatch_client_dropped_total{{project="{project}",reason="spool_full"}} 7' in scrape
    assert f'opswatch_client_dropped_total{{project="{project}",reason="queue_full"}} 2' in scrape
