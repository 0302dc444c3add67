"""The client of the durability test: sends events in batches and writes down every acknowledged one.

``python durability_client.py URL KEY TOTAL BATCH ACKED_FILE [--no-timestamp]``: batch ``i`` holds events
``i*BATCH ..`` with fixed event ids (and, with ``--no-timestamp``, no timestamp: the server dates them on
arrival, so a resend after a restart is dated differently, as Sentry check-ins are). A batch is resent, unchanged, until the server answers 200 (connection refused or
reset while the server is down, 5xx, 429); after a 200 its ids are appended to ``ACKED_FILE`` and flushed.
Prints ``done`` at the end. Deliberately not the SDK's transport: the test is about the server's promise.
"""

from __future__ import annotations

import gzip
import sys
import time

import httpx
import orjson


def main() -> None:
    url, key, total, batch, acked_path = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        sys.argv[5],
    )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    dated = "--no-timestamp" not in sys.argv[6:]
    with open(acked_path, "a") as acked, httpx.Client(timeout=10, trust_env=False) as client:
        for start in range(0, total, batch):
            ids = [f"{index:032x}" for index in range(start, min(total, start + batch))]
            body = gzip.compress(
                b"".join(
                    orjson.dumps(
                        {
                            "event_id": event_id,
                            **({"timestamp": stamp} if dated else {}),
                            "message": "durable",
                            "seq": int(event_id, 16),
                            "operation": "durability.test",
                        }
                    )
                    + b"\n"
                    for event_id in ids
                ),
                1,
            )
            while True:
                try:
                    answer = client.post(
                        f"{url}/api/1/events/",
                        content=body,
                        headers={"Authorization": f"Bearer {key}", "Content-Encoding": "gzip"},
                    )
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                if answer.status_code == 200:
                    break
                if answer.status_code not in (429, 500, 502, 503, 504):
                    raise SystemExit(f"unexpected answer {answer.status_code}: {answer.text}")
                time.sleep(0.05)
            acked.write("\n".join(ids) + "\n")
            acked.flush()
    print("done", flush=True)


if __name__ == "__main__":
    main()
