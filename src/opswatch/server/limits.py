"""Every limit the server enforces at ingest, in one table, with why it has the value it has.

Each limit has a test at its edge (tests/test_ingest_limits.py). Anything over a limit is refused with a
4xx and a reason naming the limit; nothing is silently cut. Where Sentry's ingest proxy (Relay) has a
figure for the same thing we use it, so a payload Sentry accepts is accepted here too.
"""

from __future__ import annotations

from typing import Final

from .. import _limits as _sdk_limits
from ..crons import config as _cron_config

KiB: Final = 1024
MiB: Final = 1024 * KiB

# -- a request ------------------------------------------------------------------------------------------

#: Largest request body on the wire (compressed or not). Relay's ``max_api_payload_size`` is 20 MiB;
#: the SDK's transport sends batches far below this. Checked against Content-Length before reading and
#: again while a chunked body streams in.
MAX_BODY_BYTES: Final = 20 * MiB

#: Most bytes of a request read, and most inflated, before it is authenticated. A tunnelled Sentry
#: envelope carries its key (``dsn``) in its first line, which Sentry's SDKs keep to a few hundred bytes;
#: that line must end within this many bytes, compressed or not. Everything else authenticates from its
#: headers or URL before a byte of the body is read, so an anonymous bomb costs at most this much.
MAX_UNAUTHENTICATED_BYTES: Final = 16 * KiB

#: Seconds the whole body of an ingest request may take to arrive (408 after that). A 20 MiB body at
#: 10 Mbit/s takes 17 s; the SDKs send batches of a few KiB. Settable as ``OPSWATCH_BODY_TIMEOUT``.
BODY_TIMEOUT_SECONDS: Final = 30.0

#: Largest body after decompression. Relay allows 200 MiB for a decompressed envelope (attachments
#: included); a compression ratio of 1000:1 turns a small body into a bomb, so decompression stops at this
#: many bytes rather than after it (the "bomb" test sends a few KiB that inflate to gigabytes).
MAX_DECOMPRESSED_BYTES: Final = 200 * MiB

#: Largest decompressed native batch: 10,000 events of the SDK's largest record size fit in 64 MiB
#: only when most are small, which is what a batch is. Keeps one request's parsed objects in memory
#: well under a gigabyte.
MAX_NATIVE_DECOMPRESSED_BYTES: Final = 64 * MiB

#: Most events in one native batch, and most log records in one Sentry envelope. The SDK's transport
#: sends at most 1,000; Sentry's SDKs send logs in containers of 100.
MAX_EVENTS_PER_BATCH: Final = 10_000

#: Most items in one Sentry envelope (events, log containers, check-ins, attachments ...).
MAX_ENVELOPE_ITEMS: Final = 1_000

# -- an event -------------------------------------------------------------------------------------------

#: Largest single event (one NDJSON line, one Sentry event/transaction/log item). Relay's limit for
#: event, log and span items is 1 MiB; the SDK cuts its own records at 256 KiB, so a native event over
#: 1 MiB did not come from our SDK.
MAX_EVENT_BYTES: Final = 1 * MiB

#: Largest Sentry ``log`` item: a container of up to 100 logs from the SDKs, each far under 1 MiB.
#: The envelope's log records together are also bounded by ``MAX_EVENTS_PER_BATCH``.
MAX_LOG_CONTAINER_BYTES: Final = 10 * MiB

#: Largest Sentry check-in item (Relay: 100 KiB).
MAX_CHECK_IN_BYTES: Final = 100 * KiB

#: Most top-level fields in one event. Fields become attribute columns in the store's key catalog; a
#: sender that puts ids in key names would otherwise create a column per event. The SDK keeps 1,000
#: items per container; 500 top-level keys is far above any real log line.
MAX_FIELDS_PER_EVENT: Final = 500

#: Longest field name, in characters (a column name in SQL).
MAX_FIELD_NAME_LENGTH: Final = 128

#: Deepest nesting of objects and arrays inside an event. The SDK cuts its own records at 12 levels;
#: Sentry events nest ``contexts.trace.data.x`` or ``exception.values[].stacktrace.frames[].vars.a.b``
#: deeper, so the server allows more, and refuses more than this rather than walking without end.
MAX_DEPTH: Final = 32

#: Longest ``event_id``: 32 hex characters from our SDK and Sentry's, 36 for a UUID with dashes.
MAX_EVENT_ID_LENGTH: Final = 64

#: Longest duration an event may carry, in milliseconds: 366 days. ``duration_ms`` (and a check-in's
#: ``duration`` in seconds) becomes a run's duration, a percentile, a date computed from a start; a value
#: past this is never a measurement but a bug or an attack (``1e308`` made every later answer about the
#: monitor fail). Such an event is refused with the reason, like a bad timestamp: clamping would store a
#: made-up number that charts and run tables show as real. Negative and non-finite durations are refused.
MAX_DURATION_MS: Final = 366 * 86_400_000

# -- pings ----------------------------------------------------------------------------------------------

#: Longest ping body kept as the run's output (scripts post the tail of their log). Healthchecks keeps
#: 100 KiB; we keep the SDK's longest string (``opswatch._limits.MAX_STRING_LENGTH``, 16 KiB), because
#: redaction on arrival cuts every longer string anyway. Longer bodies are cut, not refused, and the
#: record says so in ``output_truncated``: a ping must never fail because a log was long.
MAX_PING_BODY_BYTES: Final = _sdk_limits.MAX_STRING_LENGTH

#: Longest monitor slug in a ping or check-in: the monitors' own limit (Sentry's too), so a slug ingest
#: takes can always name a monitor.
MAX_SLUG_LENGTH: Final = _cron_config.MAX_SLUG_LENGTH

# -- connections (uvicorn; settable, see ``opswatch.server.config``) --------------------------------------

#: Seconds a client may take to send a request's headers, from connecting or from the first byte of
#: the next request on a kept-alive connection. uvicorn has no such limit of its own.
HEADER_TIMEOUT_SECONDS: Final = 10.0

#: Seconds an idle kept-alive connection stays open (uvicorn's ``timeout_keep_alive``).
KEEPALIVE_TIMEOUT_SECONDS: Final = 5.0

#: Connections and requests in flight at once (uvicorn's ``limit_concurrency``); past it, new requests
#: are answered 503. Each costs a few KiB; the ingest pipeline bounds the events behind them.
MAX_CONNECTIONS: Final = 1000

#: ``--workers`` at most (``opswatch.server.workers``): each worker is a Python process (~60 MB) and one
#: owner process commits for all of them, so more than a few per core only adds memory.
MAX_WORKERS: Final = 64
#: Seconds a worker may take to finish its requests after SIGTERM before the owner kills it.
WORKER_STOP_SECONDS: Final = 30.0
#: Seconds between restarts of a worker that keeps dying at once (a crash loop costs no more than this).
WORKER_RESTART_SECONDS: Final = 1.0

# -- logins (opswatch.server.throttle) ------------------------------------------------------------------

#: Failed logins or admin tokens one client address may make in a burst, and seconds to earn one
#: more. Past it the address is answered 429 with Retry-After, before the token is even compared:
#: 10 guesses, then one every 6 s (600 an hour) against a 256-bit token.
AUTH_FAILURE_BURST: Final = 10
AUTH_FAILURE_REFILL_SECONDS: Final = 6.0

#: Client addresses the throttle remembers (the oldest is forgotten first).
AUTH_THROTTLE_MAX_CLIENTS: Final = 10_000

# -- the pipeline ---------------------------------------------------------------------------------------

#: Most events waiting for the durable append. Past this, ingest answers 429 with Retry-After instead
#: of queueing without bound: senders (our transport) back off and retry, and memory stays bounded.
MAX_PENDING_EVENTS: Final = 200_000

#: Most events written in one group commit; a larger backlog is written in several commits.
MAX_EVENTS_PER_COMMIT: Final = 50_000

#: Seconds a client is told to wait in ``Retry-After`` when the pipeline is full.
RETRY_AFTER_SECONDS: Final = 1

#: Event ids remembered per generation for answering ``duplicates`` (two generations are kept, so
#: between this many and twice this many of the latest ids). The store is the real guard against
#: duplicates; this window only makes the count exact for retries that come soon after.
RECENT_IDS_PER_GENERATION: Final = 200_000

#: Seconds ``/healthz`` answers ``degraded`` after an ingest hook failed (issue grouping, check-ins) or
#: could not process a record. The counts stay in ``/metrics``; this window only says "lately".
HOOK_DEGRADED_SECONDS: Final = 300.0

#: Seconds a server's claim on an issue notice holds before another server (or this one after a restart)
#: sends it again. Longer than a delivery can take while the claimer lives: five attempts with backoff up
#: to 60 s, or a Slack ``Retry-After`` of up to 900 s (``alerts.limits``). A kill costs this much delay.
ISSUE_NOTICE_LEASE_SECONDS: Final = 1200.0

#: Seconds a server's claim on a rule notification message holds before another server (or this one
#: after a restart) sends it again: the same delivery bound as issue notices (``rules.notify``).
RULE_MESSAGE_LEASE_SECONDS: Final = 1200.0

# -- the event store and SQL (opswatch.server.store, opswatch.server.query) -----------------------------

#: Rows a cold attribute key must appear in before it gets its own typed column. Below this it lives in
#: the ``attributes`` JSON container (still a column of the ``logs`` view, only slower to scan). A key
#: seen in a hundred events is a field the application logs on purpose, not a one-off.
STORE_PROMOTE_AFTER: Final = 100

#: Most attribute keys with their own typed column. A DuckDB column that is NULL in most rows costs
#: almost nothing on disk (constant segments), but every column costs at insert and in the catalog;
#: SigNoz and PostHog materialize tens to a few hundred keys.
STORE_MAX_PROMOTED_COLUMNS: Final = 256

#: Most keys in the key catalog, that is, keys that are columns of the ``logs`` view. Keys past this
#: (ids used as key names) stay in the ``attributes`` container, reachable as ``attributes->>'key'``.
STORE_MAX_CATALOG_KEYS: Final = 2_000

#: Most catalog keys one project may add, and most new keys one project may add in one commit. The
#: catalog (and so the ``logs`` view) is shared by every project: these keep one sender that invents
#: field names from filling it; its extra fields stay in ``attributes``. A full catalog makes room for
#: a project under its share by dropping the least-seen cold key of the project holding the most.
STORE_MAX_KEYS_PER_PROJECT: Final = 500
STORE_MAX_NEW_KEYS_PER_COMMIT: Final = 100

#: Most rows written in one group commit; a longer queue of appends is written in several commits.
STORE_MAX_ROWS_PER_COMMIT: Final = 50_000

#: WAL size that makes DuckDB checkpoint on commit. The default (16 MiB) checkpoints every few
#: thousand events and holds loading to ~35 k rows/s with 10 k-row commits; 1 GiB keeps it >100 k rows/s.
#: A larger WAL only costs replay time after a crash (seconds per GiB).
STORE_CHECKPOINT_THRESHOLD_BYTES: Final = 1024 * MiB

#: The writer checkpoints on its own after this many idle seconds when the WAL has grown past
#: ``STORE_IDLE_CHECKPOINT_MIN_WAL_BYTES``, so a quiet server restarts fast.
STORE_IDLE_CHECKPOINT_SECONDS: Final = 5.0
STORE_IDLE_CHECKPOINT_MIN_WAL_BYTES: Final = 64 * MiB

#: Rollup rows (``store/rollups.py``) written since the last merge past which the writer merges the
#: rows of the minutes touched since then into one per key. Each commit appends one row per minute and
#: dimensions it touched; reads sum them, so this bounds their number, not their correctness.
STORE_ROLLUP_COMPACT_ROWS: Final = 100_000

#: Seconds between two retention runs (events older than ``OPSWATCH_RETENTION_DAYS`` are deleted).
RETENTION_INTERVAL_SECONDS: Final = 3600.0

# -- replicas (``opswatch.server.leader``) ----------------------------------------------------------------

#: Seconds within which another replica takes over the singletons (cron clock, rules ...) when the leader
#: dies (``OPSWATCH_LEADER_LEASE``). A missed heartbeat is noticed that much later at worst during a
#: failover; shorter leases cost a state-store write per renewal and tolerate shorter database hiccups.
LEADER_LEASE_SECONDS: Final = 15.0
#: Seconds between renewals (and followers' polls) (``OPSWATCH_LEADER_RENEW``), at most a sixth of the
#: lease: the holder stops leading ``lease - 3 * renew`` seconds after its last good renewal started, so
#: it has at least two more tries first, and the fence leaves ``renew`` seconds between the old leader's
#: stop and the earliest start of the next one.
LEADER_RENEW_SECONDS: Final = 2.0
#: Bounds of the two settings: below a second a lease is a database write storm and breaks on any
#: garbage-collection pause; above an hour a dead leader's cron misses wait too long to be noticed.
LEADER_LEASE_MIN_SECONDS: Final = 1.0
LEADER_LEASE_MAX_SECONDS: Final = 3600.0
LEADER_RENEW_MIN_SECONDS: Final = 0.1

#: Most records one ``tail``/``get_events`` call returns.
TAIL_MAX_LIMIT: Final = 1_000

#: Longest SQL text accepted by ``POST /api/0/query`` and ``opswatch query``.
QUERY_MAX_SQL_CHARS: Final = 100_000

#: Rows a query answers by default; more are cut and the answer says ``truncated``.
QUERY_DEFAULT_MAX_ROWS: Final = 10_000

#: Most rows a caller may ask for (results are held in memory and sent as one JSON document).
QUERY_MAX_ROWS: Final = 100_000

#: Memory DuckDB may use for the event store, queries included (``OPSWATCH_QUERY_MEMORY_LIMIT``).
#: DuckDB's own default is 80 % of the machine's RAM, which one ``GROUP BY`` over a wide table can
#: take; past this a query spills to disk (hash tables, sorts) or fails with "out of memory".
QUERY_MEMORY_LIMIT: Final = "1GB"

#: Disk a query may spill to (``OPSWATCH_QUERY_TEMP_LIMIT``; DuckDB's default is 90 % of free space).
QUERY_TEMP_LIMIT: Final = "4GB"

#: Largest answer of one query, in bytes of its values (text and blobs by their length, numbers as 8):
#: rows past it are cut and the answer says so, as for the row cap. The row cap alone lets twenty
#: 10 MB strings through.
QUERY_MAX_ANSWER_BYTES: Final = 32 * MiB

#: Most elements a list or string may be built with from constants in a query (``range(n)``,
#: ``repeat(s, n)`` ...). DuckDB builds such a value in one piece, outside its memory limit and where
#: the time limit cannot interrupt it (``unnest(range(200000000))`` took 14 GB and a minute).
QUERY_MAX_GENERATED: Final = 1_000_000

#: Queries that ran past their time limit and did not stop at the interrupt, still running; past this
#: many, new queries are answered 503 until they end (each holds a thread and memory).
QUERY_MAX_ABANDONED: Final = 2

#: A query is answered 408 by twice its time limit plus this many seconds, stopped or not.
QUERY_STOP_GRACE_SECONDS: Final = 1.0

#: Seconds a query may run by default before it is interrupted, and the most a caller may ask for.
QUERY_DEFAULT_TIMEOUT_SECONDS: Final = 30.0
QUERY_MAX_TIMEOUT_SECONDS: Final = 300.0

#: On ClickHouse (``OPSWATCH_EVENTS_URL=clickhouse://``) a query also runs under the server's own limits:
#: at most this much memory (``max_memory_usage``; a GROUP BY over billions of distinct keys stops with
#: an error instead of taking the server down) and at most this many result bytes (``max_result_bytes``;
#: the row cap times a few KiB per row, the size of one JSON answer the API is willing to hold).
CLICKHOUSE_QUERY_MAX_MEMORY_BYTES: Final = 2 * 1024 * MiB
CLICKHOUSE_QUERY_MAX_RESULT_BYTES: Final = 256 * MiB

# -- alert rules ----------------------------------------------------------------------------------------

#: Most rules one server evaluates (file, defaults and API together). The evaluator runs them one after
#: another every interval; issue 12 sizes the benchmark at 1,000 rules.
RULES_MAX: Final = 1_000

#: Most instances (label sets) one rule may produce per evaluation. A ``group_by`` over an id-like field
#: would otherwise make a state row per user; the rule's query asks for one row more and the evaluation is
#: an error naming this limit when it gets it.
RULES_MAX_INSTANCES: Final = 1_000

#: Seconds one rule's query may run before it is interrupted (an evaluation error for that rule).
RULES_QUERY_TIMEOUT_SECONDS: Final = 10.0

#: Most rows (distinct combinations of project, service, operation, level, kind and environment) of one
#: window that ``RollupSource`` reads whole and answers every rule over it from in Python (one query per
#: window per round). Past this a rule reads its own answer with SQL: summing 50,000 rows in Python
#: costs about as much as that statement.
RULES_ROLLUP_MAX_COMBINATIONS: Final = 50_000

#: Longest rule window: the store keeps 30 days by default, and a week's comparison needs its own week.
RULES_MAX_WINDOW_SECONDS: Final = 31 * 86_400

#: Most events one test of ``opswatch rules test`` may generate (``repeat`` included) and most
#: evaluations it may run: a typo (``repeat = 10000000``, ``interval = "1s"`` over a week) is refused
#: naming the key instead of filling the disk or running for an hour.
RULES_TEST_MAX_EVENTS: Final = 100_000
RULES_TEST_MAX_EVALUATIONS: Final = 10_000

#: Fire/resolve transitions of one instance within an hour above which it is marked flapping.
RULES_FLAP_TRANSITIONS: Final = 6

#: Most weeks an anomaly rule's baseline looks back. Each week is one more read of the rule's window per
#: evaluation, and the store keeps 30 days by default (4 weeks); 8 covers a retention of two months.
RULES_ANOMALY_MAX_WEEKS: Final = 8

#: Most error events with a user an ``issue_users`` rule reads per evaluation (each is mapped to its
#: issue through the state store); past it the evaluation is an error naming this limit.
RULES_ISSUE_USER_EVENTS: Final = 50_000

#: Seconds the dashboard spends recomputing a rule's signal for its chart (``ui.signal_chart``), newest
#: point first; the older points past it are left out and the page says so.
RULES_CHART_BUDGET_SECONDS: Final = 5.0

# -- spans (distributed tracing) ------------------------------------------------------------------------

#: Largest decompressed OTLP request. The OpenTelemetry Collector's HTTP receiver takes 20 MiB on the
#: wire by default; a batch processor's export of 512 spans is well under 1 MiB. Same bound as a native
#: batch, for the same reason (one request's parsed objects stay well under a gigabyte).
MAX_OTLP_DECOMPRESSED_BYTES: Final = 64 * MiB

#: Most spans in one request (OTLP export, Sentry envelope). OTel's batch processor exports 512 at a
#: time; a Sentry transaction holds at most 1,000 child spans (the SDKs' ``max_spans``).
MAX_SPANS_PER_REQUEST: Final = 10_000

#: Longest span name. Names are operations (``GET /users/{id}``, ``SELECT users``), not payloads; Sentry
#: and OTel SDKs keep them short. A longer name is refused (the span is counted as rejected), never cut.
MAX_SPAN_NAME_CHARS: Final = 2_000

# -- tail sampling (opswatch.server.traces.tail) ---------------------------------------------------------

#: Seconds a trace with unsampled spans must be quiet (no span of it arriving) before it is decided
#: (``OPSWATCH_TRACES_TAIL_WAIT``). The OpenTelemetry Collector's tail sampling processor waits 30 s by
#: default (``decision_wait``); a web request's spans arrive within a second or two of its end, and the
#: SDK's transport sends every few seconds, so 10 s covers a trace across services.
TRACES_TAIL_WAIT_SECONDS: Final = 10.0

#: A trace lasting longer than this many milliseconds is kept (``OPSWATCH_TRACES_SLOW_MS``): the seed's
#: "slow" threshold for an API call (``opswatch.perf.DEFAULT_THRESHOLDS``).
TRACES_SLOW_MS: Final = 1_000

#: Unsampled spans held at once, over every trace. At ~1 KiB a span this is ~100 MiB at most; past it
#: the traces quiet the longest are decided early (dropped: they had not qualified).
TRACES_TAIL_MAX_SPANS: Final = 100_000

#: Traces with held spans at once (the Collector's ``num_traces`` defaults to 50,000).
TRACES_TAIL_MAX_TRACES: Final = 20_000

#: Unsampled spans held for one trace; past it the spans held so far are dropped and holding starts
#: again (a trace that long without an error or a slow stretch is a loop, not a request).
TRACES_TAIL_MAX_SPANS_PER_TRACE: Final = 10_000
