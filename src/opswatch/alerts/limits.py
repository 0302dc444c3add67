"""Every limit and default of alert delivery, in one table, with why it has the value it has.

Slack's numbers come from its Block Kit and incoming-webhook documentation; past them Slack answers
``invalid_blocks`` (or cuts the text silently), so opswatch cuts first, with a visible marker, and never
lets a long value cost the whole alert. Each limit has a test at its edge (tests/test_alerts_blocks.py,
tests/test_alerts_delivery.py, tests/test_alerts_email.py).
"""

from __future__ import annotations

from typing import Final

from .._limits import TRUNCATION_MARKER

# -- Slack Block Kit ---------------------------------------------------------------------------------

#: Most blocks in one message.
SLACK_MAX_BLOCKS: Final = 50
#: Longest text of a section block (mrkdwn).
SLACK_MAX_SECTION_TEXT: Final = 3_000
#: Longest text of a header block (plain_text).
SLACK_MAX_HEADER_TEXT: Final = 150
#: Most fields in one section block.
SLACK_MAX_FIELDS: Final = 10
#: Longest text of one section field.
SLACK_MAX_FIELD_TEXT: Final = 2_000
#: Most elements in one context block.
SLACK_MAX_CONTEXT_ELEMENTS: Final = 10
#: Longest text of a button, and of its URL.
SLACK_MAX_BUTTON_TEXT: Final = 75
SLACK_MAX_BUTTON_URL: Final = 3_000
#: Slack cuts the top-level ``text`` at 40,000 characters; we cut it ourselves so the marker shows.
SLACK_MAX_TEXT: Final = 40_000

#: What a cut value ends with.
CUT_MARKER: Final = TRUNCATION_MARKER

# -- delivery ----------------------------------------------------------------------------------------

#: Alerts waiting for the background worker. Past it ``send`` drops the alert and counts it: memory stays
#: bounded when a webhook hangs. An alert is small; a thousand is far more than any sane burst.
QUEUE_SIZE: Final = 1_000
#: Messages waiting for one channel (behind a rate-limited or retried one). Past it the waiting ones are
#: folded into one summary message, so a long outage costs one message's memory, not one per alert.
MAX_OUTBOX: Final = 20
#: Slack allows "about one message per second per webhook, short bursts allowed".
PACE_SECONDS: Final = 1.0
BURST: Final = 3
#: Alerts with the same route and fingerprint inside this window are counted, not re-sent (seconds).
REPEAT_INTERVAL: Final = 600.0
#: Dedupe entries kept at most (least recently seen ones go first).
MAX_DEDUPE_KEYS: Final = 10_000
#: Transient failures (connection errors, timeouts, 5xx): attempts in all, and the backoff between them:
#: ``min(BACKOFF_MAX, BACKOFF_INITIAL * 2**n)`` with full jitter over its upper half.
MAX_ATTEMPTS: Final = 5
BACKOFF_INITIAL: Final = 1.0
BACKOFF_MAX: Final = 60.0
#: A 429's ``Retry-After`` is honoured up to this many seconds (a bigger value is a broken header).
MAX_RETRY_AFTER: Final = 900.0
#: Waiting for ``Retry-After`` never drops the message; without the header we wait this long.
DEFAULT_RETRY_AFTER: Final = 30.0

# -- HTTP ------------------------------------------------------------------------------------------

#: Every webhook request has a timeout callers can shorten but never remove or raise past the maximum.
HTTP_TIMEOUT: Final = 5.0
HTTP_MAX_TIMEOUT: Final = 30.0
HTTP_CONNECT_TIMEOUT: Final = 3.0
#: Longest answer body kept for ``last_error`` and the CLI.
MAX_ANSWER_BODY: Final = 1_000
#: Longest webhook URL accepted at configuration time.
MAX_URL_LENGTH: Final = 2_048

# -- summaries -------------------------------------------------------------------------------------

#: Distinct titles listed in a folded summary; the rest are counted in one line.
SUMMARY_MAX_LINES: Final = 10

# -- email (SMTP) ----------------------------------------------------------------------------------

#: Every SMTP network operation (connect, STARTTLS, each command) has this timeout; callers can shorten
#: it but never remove it or raise it past the maximum.
SMTP_TIMEOUT: Final = 10.0
SMTP_MAX_TIMEOUT: Final = 30.0
#: Longest subject line (characters): mail clients show about 60-80; the rest of the summary is in the body.
EMAIL_MAX_SUBJECT: Final = 120
#: Most recipients of one alert email (more is a mailing list's job).
EMAIL_MAX_RECIPIENTS: Final = 50
#: Longest email address (RFC 5321's path limit).
EMAIL_MAX_ADDRESS: Final = 254
