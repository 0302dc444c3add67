"""Property: planted secrets of every kind never appear in any output, and non-secret fields survive."""

from __future__ import annotations

import io
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import opswatch
from opswatch.redact import Redactor
from opswatch.testing import capture_logs

SECRETS = [
    "4242 4242 4242 4242",
    "5555-5555-5555-4444",
    "378282246310005",
    "Bearer Zm9vYmFyYmF6cXV4MTIzNDU2",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "postgres://app:s3cr3tpw@db:5432/x",
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "xoxb-123456789012-abcdefghijkl",
    "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXX",
    "123-45-6789",
]
# The part of each secret that must never be seen (url credentials keep the user, bearer keeps the word).
NEEDLES = [
    "4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005", "Zm9vYmFyYmF6cXV4MTIzNDU2",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0", "s3cr3tpw", "MIIEvQIBADANBg",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "AKIAIOSFODNN7EXAMPLE", "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "xoxb-123456789012-abcdefghijkl", "T0001/B0001/XXXXXXXXXXXX", "123-45-6789",
]
SECRET_KEYS = ["password", "apiKey", "x-api-key", "DB_PASSWORD", "stripeSecretKey", "session", "cookie", "cvv"]
KEY_SECRET = "plain-value-under-a-secret-key"

# Words that cannot combine with a planted secret into something else, so that containment is exact.
safe_text = st.text(alphabet=st.sampled_from("abcdefghij klmnop"), max_size=12)
safe_key = st.sampled_from(["amount", "church", "note", "items", "meta", "tokensUsed", "session_count", "author"])


@st.composite
def planted(draw: st.DrawFn) -> str:
    index = draw(st.integers(0, len(SECRETS) - 1))
    return f"{draw(safe_text)} {SECRETS[index]} {draw(safe_text)}"


leaf = st.one_of(safe_text, st.integers(-1000, 1000), st.booleans(), st.none(), planted())
tree = st.recursive(
    leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(safe_key, children, max_size=4),
        st.dictionaries(st.sampled_from(SECRET_KEYS), st.just(KEY_SECRET), max_size=2),
    ),
    max_leaves=20,
)


def assert_clean(text: str) -> None:
    for needle in NEEDLES:
        assert needle not in text
    assert KEY_SECRET not in text


def strip_secrets(value: Any) -> Any:
    """What must survive: every non-secret scalar that was not planted."""
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items() if k not in SECRET_KEYS}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value


def survivors(value: Any) -> list[Any]:
    out: list[Any] = []
    if isinstance(value, dict):
        for v in value.values():
            out.extend(survivors(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(survivors(v))
    elif not (isinstance(value, str) and (any(s in value for s in SECRETS) or "[REDACTED]" in value)):
        out.append(value)
    return out


@settings(max_examples=300, deadline=None)
@given(tree)
def test_it_lets_no_planted_secret_survive_the_redactor(value: Any) -> None:
    out = Redactor().redact({"field": value})
    assert_clean(orjson.dumps(out).decode())
    assert survivors(strip_secrets(out)) == survivors(strip_secrets({"field": value}))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=planted(), fields=st.dictionaries(safe_key, tree, max_size=4))
def test_it_lets_no_planted_secret_reach_any_console_format(message: str, fields: dict[str, Any]) -> None:
    for fmt in ("json", "pretty"):
        stream = io.StringIO()
        opswatch.init(stream=stream, format=fmt, level="trace", capture_stdlib=False)
        with capture_logs() as logs:
            try:
                raise RuntimeError(message)
            except RuntimeError as err:
                opswatch.get_logger("p").error(message, err, **fields)
        opswatch.flush()
        assert_clean(stream.getvalue())
        assert_clean(orjson.dumps(logs).decode())
        for key in fields:
            assert key in logs[0]
