"""The native ingest protocol, client side: where batches go, how they are encoded, what answers mean.

``POST <base>/api/<project>/events/`` with ``Authorization: Bearer <key>``, a gzipped NDJSON body (one
record per line), answered ``200 {"accepted": N, "duplicates": N, "rejected": [{"index": i, "reason":
"..."}]}``. This module only encodes and classifies; sending, retrying and spooling live in
``opswatch.sinks.server``.
"""

from __future__ import annotations

import dataclasses
import email.utils
import gzip
import time
from typing import Any, Final, Literal

import orjson

from ..config import Dsn
from ._transport import Response

Outcome = Literal["ok", "transient", "permanent", "too_large"]

#: The header that tells the server how many records the client lost, by reason, since its last report:
#: ``queue_full=12, spool_full=3`` (Sentry SDKs send the same facts as a "client report" item).
CLIENT_REPORT_HEADER: Final = "X-Opswatch-Client-Report"

#: Statuses worth retrying besides 5xx: request timeout and "slow down".
RETRY_STATUSES: Final = frozenset({408, 429})


def events_url(dsn: Dsn) -> str:
    """The native ingest endpoint of ``dsn``'s project."""
    return f"{dsn.base_url}/api/{dsn.project}/events/"


def request_headers(dsn: Dsn) -> dict[str, str]:
    """Auth and body headers for a gzipped NDJSON batch."""
    return {
        "Authorization": f"Bearer {dsn.key}",
        "Content-Type": "application/x-ndjson",
        "Content-Encoding": "gzip",
    }


def client_report(drops: dict[str, int]) -> str:
    """The ``CLIENT_REPORT_HEADER`` value for ``{reason: count}``."""
    return ", ".join(f"{reason}={count}" for reason, count in drops.items())


def encode(lines: list[bytes], compresslevel: int) -> bytes:
    """Join JSON lines (each ending in a newline) and gzip them; the same lines give the same bytes."""
    return gzip.compress(b"".join(lines), compresslevel=compresslevel, mtime=0)


def decode(body: bytes) -> list[bytes] | None:
    """The JSON lines of an encoded batch, or None when it is not valid gzip."""
    try:
        data = gzip.decompress(body)
    except (OSError, EOFError):
        return None
    return [line + b"\n" for line in data.split(b"\n") if line]


def classify(status: int) -> Outcome:
    """What an HTTP status means for the batch: delivered, retry later, split it, or refused for good."""
    if 200 <= status < 300:
        return "ok"
    if status == 413:
        return "too_large"
    if status in RETRY_STATUSES or status >= 500:
        return "transient"
    return "permanent"  # other 4xx, and 3xx: redirects are not followed


@dataclasses.dataclass(frozen=True)
class Answer:
    """A 2xx answer, counted: what the server took, already had, and rejected (index, reason)."""

    accepted: int
    duplicates: int
    rejected: list[tuple[Any, str]]


def parse_answer(response: Response, count: int) -> Answer:
    """Read a 2xx answer for a batch of ``count`` records; an unreadable body means "all accepted"."""
    answer: Any = None
    if response.body:
        try:
            answer = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            answer = None
    if not isinstance(answer, dict):
        return Answer(count, 0, [])
    rejected: list[tuple[Any, str]] = []
    raw = answer.get("rejected")
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict):
                rejected.append((item.get("index"), str(item.get("reason", ""))))
            else:
                rejected.append((None, str(item)))
    accepted, duplicates = answer.get("accepted"), answer.get("duplicates")
    if isinstance(accepted, int) and isinstance(duplicates, int):
        return Answer(accepted, duplicates, rejected)
    if isinstance(accepted, int):
        return Answer(accepted, max(0, count - accepted - len(rejected)), rejected)
    return Answer(count - len(rejected), 0, rejected)


def reason(response: Response | None) -> str:
    """A short reason for a failed answer, from its JSON ``detail``/``reason``/``error`` or its text."""
    if response is None:
        return "no answer"
    try:
        answer = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return response.body[:200].decode("utf-8", "replace") or "no reason given"
    if isinstance(answer, dict):
        for key in ("detail", "reason", "error", "message"):
            if key in answer:
                return str(answer[key])[:200]
    return str(answer)[:200]


def retry_after(response: Response | None) -> float | None:
    """``Retry-After`` in seconds: a number (fractions tolerated) or an HTTP date; None when absent."""
    value = response.headers.get("retry-after") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
