"""Redaction on arrival gives exactly the SDK's result, faster (``opswatch.server.redaction``)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from opswatch.redact import Redactor, may_hold_secret
from opswatch.server.redaction import ServerRedactor

FRAGMENTS = [
    "jane.doe@example.com",
    "Bearer abcdefgh12345678",
    "basic dXNlcjpwYXNz",
    "TOKEN  zzzzzzzzzz",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111111111111111",
    "078-05-1120",
    "sk_live_abcdefgh1234",
    "whsec_abcdefghijklmnop1234",
    "AKIAABCDEFGHIJKLMNOP",
    "ghp_" + "a" * 36,
    "xoxb-12345678-abcd",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
    "https://user:pass@example.com/x",
    "https://hooks.slack.com/services/T0/B0/xyz",
    "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
    "password=hunter2",
    '"SecretAccessKey": "',
    "Cookie: sid=abc",
    " token: x",
    "=",
    ": ",
    "glpat-abcdefghij0123456789",
    "xapp-1-A0123-456-abcdef0123",
    "AIza" + "b" * 35,
    "DE89 3704 0044 0532 0130 00",
    "NL91ABNA0417164300",
    "123 45 6789",
    "jane%40example.com",
    "logo@2x.png",
    "git@github.com:org/x.git",
    "1733200000003",
    "2223003122003222",
    "2025-11-01T02:00:00.123Z",
    "order 12345",
    "church_7",
    "Donation completed",
    "ünïcødé ٤١١١١١١١١١١١١١١١",
    "1234567890",
    "12345678901",
    " ",
    "-",
    "@",
    "://",
]
text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=4).map("".join)
keys = st.sampled_from(
    [
        "message",
        "password",
        "api_key",
        "sort_key",
        "accessToken",
        "tokensUsed",
        "note",
        "card_number",
        "user",
        "amount",
        "church_id",
        "session_id",
        "author",
        "card",
        "pan",
        "cc",
        "csrfmiddlewaretoken",
    ]
)
scalars = text | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
records = st.dictionaries(keys, values, max_size=8)


@settings(max_examples=200, deadline=None)
@given(records)
def test_it_redacts_a_record_exactly_as_the_sdk_does(record: dict[str, Any]) -> None:
    assert ServerRedactor().redact_record(record) == Redactor().redact(record)


frames = st.fixed_dictionaries(
    {"file": text, "line": st.integers(), "function": text | st.none()},
    optional={
        "module": text,
        "in_app": st.booleans(),
        "column": st.integers(),
        "context_line": text,
        "vars": values,
    },
)
errors = st.recursive(
    st.fixed_dictionaries(
        {"type": text, "message": text, "stack": st.lists(frames, max_size=3)},
        optional={"handled": st.booleans(), "password": text},
    ),
    lambda inner: st.fixed_dictionaries(
        {"type": text, "message": text, "stack": st.lists(frames, max_size=2), "cause": inner}
    ),
    max_leaves=14,
)


@settings(max_examples=150, deadline=None)
@given(errors)
def test_it_redacts_an_error_chain_exactly_as_the_sdk_does(error: dict[str, Any]) -> None:
    record = {"message": "failed", "error": error}
    assert ServerRedactor().redact_record(record) == Redactor().redact(record)


def test_it_marks_a_chain_past_the_depth_limit_as_the_sdk_does() -> None:
    error: dict[str, Any] = {"type": "E0", "message": "m", "stack": [{"file": "a.py", "line": 1}]}
    for level in range(1, 14):
        error = {"type": f"E{level}", "message": "jane.doe@example.com", "stack": [], "cause": error}
    record = {"error": error}
    assert ServerRedactor().redact_record(record) == Redactor().redact(record)


@settings(max_examples=1000, deadline=None)
@given(text)
def test_it_only_skips_strings_no_sdk_pattern_can_match(value: str) -> None:
    if value.isascii() and not may_hold_secret(value):
        assert Redactor().redact_text(value) == value


def test_it_copies_the_fields_ingest_vouches_for() -> None:
    # A 32-hex id can hold a Luhn-valid run of digits; censoring it would break idempotency.
    record = {
        "event_id": "abcd4111111111111111ef0123456789",
        "trace_id": "4111111111111111abcdef0123456789",
        "check_in_id": "5f3c1c1e-8f4a-4f53-9a52-411111111111",
        "timestamp": "2025-11-01T02:00:00.123Z",
        "message": "card 4111111111111111",
    }
    clean = ServerRedactor().redact_record(record)
    assert clean["event_id"] == record["event_id"]
    assert clean["trace_id"] == record["trace_id"]
    assert clean["check_in_id"] == record["check_in_id"]
    assert clean["message"] == "card [REDACTED]"


def test_it_searches_an_id_field_that_does_not_look_like_an_id() -> None:
    clean = ServerRedactor().redact_record({"trace_id": "mail jane.doe@example.com"})
    assert clean["trace_id"] == "mail j***@example.com"


def test_it_can_be_turned_off_for_benchmarks() -> None:
    record = {"password": "hunter2"}
    assert ServerRedactor(enabled=False).redact_record(record) == record


def test_it_redacts_secrets_used_as_top_level_keys_like_the_sdk() -> None:
    record = {"event_id": "e1", "ann@example.com": 3, "note": {"sk_live_4eC39HqLyjWDarjtT1zdp7dc": 1}}
    out = ServerRedactor().redact_record(record)
    assert out == Redactor().redact(record)
    assert "ann@example.com" not in out and "a***@example.com" in out
