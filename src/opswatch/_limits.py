"""Every limit the SDK enforces, in one table, with why it has the value it has.

Each limit has a test at its edge (tests/test_limits.py). Server-side limits live in
``opswatch.server.limits``.
"""

from __future__ import annotations

from typing import Final

#: Longest string value kept in a record; longer ones are cut and end with ``TRUNCATION_MARKER``.
#: Sentry keeps 8 KiB of a log message; we keep twice that so SQL in a field survives whole.
MAX_STRING_LENGTH: Final = 16_384

#: Largest serialized record in bytes. Relay's per-item limit is 1 MiB; past ours the largest fields are
#: cut until it fits, and the record says so in ``_truncated``.
MAX_RECORD_BYTES: Final = 256 * 1024

#: Deepest nesting walked in a field; deeper values become ``"[depth limit]"``.
MAX_DEPTH: Final = 12

#: Most items kept from one list, tuple, set or dict inside a field; the rest is summarized.
MAX_CONTAINER_ITEMS: Final = 1_000

#: Keys and short strings whose redaction verdict is remembered, per cache, before it is cleared.
REDACTION_CACHE_SIZE: Final = 4_096

#: Longest string whose redaction result is cached (messages repeat; payload blobs do not).
REDACTION_CACHE_MAX_STRING: Final = 256

#: How long a buffered console/file write may wait before it is flushed, in seconds. Error and fatal
#: records, and process exit, flush at once.
CONSOLE_FLUSH_INTERVAL: Final = 0.5

#: Source context of a stack frame (as sentry-sdk sends it): the line that ran and this many lines before
#: and after it, for the innermost ``CONTEXT_FRAMES`` application frames, each line cut at
#: ``CONTEXT_LINE_CHARS``. At most 10 x 11 x 200 characters (~22 KB) per exception, well inside a record.
CONTEXT_LINES: Final = 5
CONTEXT_FRAMES: Final = 10
CONTEXT_LINE_CHARS: Final = 200

#: Longest the SDK delays a stop to deliver what is pending, in seconds: at exit, at SIGTERM, at an ASGI
#: lifespan shutdown, at a multiprocessing child's end. What is not delivered by then waits in the disk
#: spool for the next run. Docker gives a stopping container 10 s, Kubernetes 30 s; the app needs its part.
STOP_TIMEOUT: Final = 5.0

TRUNCATION_MARKER: Final = "…[truncated]"

#: Longest incoming W3C ``tracestate`` kept to forward (the W3C limit a vendor must propagate: 512
#: characters); a longer one is dropped whole, as the spec allows, rather than cut mid-member.
MAX_TRACESTATE_CHARS: Final = 512

#: Longest incoming ``baggage`` read for Sentry's ``sentry-*`` items (W3C baggage's own limit: 8192 bytes);
#: a longer header is ignored.
MAX_BAGGAGE_CHARS: Final = 8_192
