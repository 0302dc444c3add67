"""Every supported secret shape is removed in every position a record can carry it; look-alikes stay."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

import opswatch
from opswatch.redact import Redactor, is_card_number, luhn_valid
from opswatch.server.redaction import ServerRedactor
from opswatch.testing import capture_logs
from redact_cast import CARDS, LOOK_ALIKES, SHAPES

CENSOR = "[REDACTED]"
#: Shapes that are lines or blocks of their own; the others are also written into a URL.
NOT_IN_URLS = (
    "pem", "yaml", "credentials file", "env dump", "header", "sts json", "json", "repr", "boto3", "next to its id"
)


@pytest.fixture
def root_logger() -> Iterator[None]:
    """Put back the root logger's handlers and level (the stdlib bridge changes them)."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def log_everywhere(text: str) -> list[dict[str, Any]]:
    """Log ``text`` in every position: message, field, nested field, list, exception message, stdlib ``%s``
    argument, header dict, URL. Returns the records as the sinks got them."""
    opswatch.init(console=False, capture_stdlib=True)
    log = opswatch.get_logger("shapes")
    with capture_logs() as logs:
        log.info(f"charge failed: {text} (retrying)")
        log.info("field", note=text)
        log.info("nested", payment={"attempt": {"detail": text, "n": 1}})
        log.info("list", lines=["first", text, "last"])
        try:
            raise ValueError(f"upstream said {text}")
        except ValueError as err:
            log.error("exception", err)
        logging.getLogger("shapes.stdlib").warning("value was %s for %s", text, "ann")
        log.info("headers", headers={"x-debug-note": text, "accept": "application/json"})
    return logs


@pytest.mark.parametrize(("name", "text", "needles"), SHAPES, ids=[s[0] for s in SHAPES])
def test_it_removes_every_shape_from_every_position(
    root_logger: None, name: str, text: str, needles: list[str]
) -> None:
    logs = log_everywhere(text)
    assert len(logs) == 7
    for record in logs:
        dumped = orjson.dumps(record).decode()
        for needle in needles:
            assert needle not in dumped, (name, needle, record)
    # The exception's own message is redacted too, not only the log message.
    assert all(needle not in logs[4]["error"]["message"] for needle in needles)


@pytest.mark.parametrize(
    ("name", "text", "needles"),
    [s for s in SHAPES if not any(word in s[0] for word in NOT_IN_URLS)],
    ids=[s[0] for s in SHAPES if not any(word in s[0] for word in NOT_IN_URLS)],
)
def test_it_removes_every_shape_written_into_a_url(name: str, text: str, needles: list[str]) -> None:
    value = text.split(" ")[-2] if name.startswith("card ") else text  # a card number, without the words
    for url in (f"https://api.example.org/v1/{value}/status?x=1", f"https://api.example.org/cb?ref=1&next={value}"):
        out = Redactor().redact({"url": url})["url"]
        for needle in needles:
            assert needle.replace(" ", "") not in out.replace(" ", ""), (name, out)


@pytest.mark.parametrize(("name", "text", "needles"), SHAPES, ids=[s[0] for s in SHAPES])
def test_the_server_removes_every_shape_on_arrival(name: str, text: str, needles: list[str]) -> None:
    record = {"message": text, "fields": {"note": text, "list": [text]}}
    out = ServerRedactor().redact_record(record)
    assert out == Redactor().redact(record)
    dumped = orjson.dumps(out).decode()
    for needle in needles:
        assert needle not in dumped


def test_the_cast_cards_are_valid_card_numbers() -> None:
    for _, number in CARDS:
        digits = number.replace(" ", "").replace("-", "")
        assert luhn_valid(digits) and is_card_number(digits), number


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_it_leaves_look_alikes_unchanged_in_text_fields_and_lists(text: str) -> None:
    redactor = Redactor()
    assert redactor.redact_text(text) == text
    assert redactor.redact({"note": text, "items": [text], "deep": {"x": text}}) == {
        "note": text,
        "items": [text],
        "deep": {"x": text},
    }


def test_it_leaves_numbers_that_only_pass_luhn_alone() -> None:
    # epoch milliseconds, an ISBN-13 and a 15-digit thread id (sentry-sdk sends it as an int attribute),
    # each passing the Luhn check: as ints, in text, and inside a JSON string
    values = {"ts": 1733200000003, "isbn": 9783161480027, "thread.id": 140234567890120}
    assert all(luhn_valid(str(v)) for v in values.values())
    assert Redactor().redact(values) == values
    as_text = {key: f"{key} {value}" for key, value in values.items()}
    assert Redactor().redact(as_text) == as_text
    as_json = orjson.dumps(values).decode()
    assert Redactor().redact_text(as_json) == as_json


def test_it_leaves_an_isbn_in_an_exception_message_alone() -> None:
    opswatch.init(console=False)
    with capture_logs() as logs:
        try:
            raise LookupError("no book with ISBN 978-3-16-148002-7 (9783161480027)")
        except LookupError as err:
            opswatch.get_logger("x").error("lookup failed", err)
    assert logs[0]["error"]["message"] == "no book with ISBN 978-3-16-148002-7 (9783161480027)"


def test_it_censors_numbers_under_card_keys_whatever_their_issuer() -> None:
    out = Redactor().redact(
        {"card": "1234 5678 9012 3456", "pan": 9999888877776666, "cc": "ann@example.com", "card_last4": "4242",
         "payment": {"cardNo": "0000-1111-2222-3333"}, "card_brand": "visa"}
    )
    assert out == {
        "card": CENSOR,
        "pan": CENSOR,
        "cc": "a***@example.com",
        "card_last4": "4242",
        "payment": {"cardNo": CENSOR},
        "card_brand": "visa",
    }


def test_it_requires_an_issuer_prefix_and_length_for_a_card_in_text() -> None:
    redactor = Redactor()
    assert redactor.redact_text("card 4111 1111 1111 1111") == f"card {CENSOR}"
    assert redactor.redact_text("n 1111 1111 1111 1117") == "n 1111 1111 1111 1117"  # Luhn, no issuer
    assert redactor.redact_text("n 41111111111111111") == "n 41111111111111111"  # Visa has no 17 digits
    assert redactor.redact_text("ref 1234 4111 1111 1111 1111") == f"ref 1234 {CENSOR}"


def test_it_keeps_the_prose_forms_it_documents_as_not_caught() -> None:
    redactor = Redactor()
    assert redactor.redact_text("the password is hunter2") == "the password is hunter2"
    assert redactor.redact_text("Invalid token: expired") == "Invalid token: expired"
    assert redactor.redact_text("token: abc123") == f"token: {CENSOR}"  # at a line's start it is a pair
    assert redactor.redact_text("password: correct horse") == f"password: {CENSOR} horse"


def test_it_keeps_json_and_urls_readable_around_what_it_censors() -> None:
    redactor = Redactor()
    assert redactor.redact_text('{"pin": 1234}') == f'{{"pin": {CENSOR}}}'
    assert redactor.redact_text('{"password": null, "ok": true}') == '{"password": null, "ok": true}'
    assert (
        redactor.redact_text("/cb?state=1&access_token=abc123&scope=read")
        == f"/cb?state=1&access_token={CENSOR}&scope=read"
    )
    assert redactor.redact_text("redis://default:hunter2@cache:6379") == f"redis://default:{CENSOR}@cache:6379"


def test_it_masks_emails_but_not_file_names_or_ssh_users() -> None:
    redactor = Redactor()
    assert redactor.redact_text("to jane.doe@example.co.uk.") == "to j***@example.co.uk."
    assert redactor.redact_text("to jane%40example.com") == "to j***%40example.com"
    assert redactor.redact_text("logo@2x.png icon-192@3x.webp") == "logo@2x.png icon-192@3x.webp"
    assert redactor.redact_text("git@github.com:org/repo.git") == "git@github.com:org/repo.git"
    assert redactor.redact_text("user@empresa.com.py") == "u***@empresa.com.py"  # .py is Paraguay


def test_it_censors_phones_and_ips_only_when_asked() -> None:
    text = "call +44 20 7946 0958 or (415) 555-2671 from 203.0.113.7 and 2001:db8::1 at 10:32:00"
    assert Redactor().redact_text(text) == text
    assert Redactor(redact_phones=True).redact_text(text) == (
        f"call {CENSOR} or {CENSOR} from 203.0.113.7 and 2001:db8::1 at 10:32:00"
    )
    assert Redactor(redact_ips=True).redact_text(text) == (
        f"call +44 20 7946 0958 or (415) 555-2671 from {CENSOR} and {CENSOR} at 10:32:00"
    )


def test_it_reads_the_phone_and_ip_settings_from_init() -> None:
    opswatch.init(console=False, redact_phones=True, redact_ips="true")
    with capture_logs() as logs:
        opswatch.get_logger("x").info("from 203.0.113.7", phone="+1 415 555 2671")
    assert logs[0]["message"] == f"from {CENSOR}"
    assert logs[0]["phone"] == CENSOR


def test_it_names_the_setting_for_a_bad_phone_or_ip_value() -> None:
    with pytest.raises(opswatch.ConfigError, match="redact_phones"):
        opswatch.init(redact_phones="sometimes")
    with pytest.raises(opswatch.ConfigError, match="redact_ips"):
        opswatch.init(redact_ips=3)


def test_it_censors_cookie_and_authorization_header_dicts() -> None:
    headers = {"Cookie": "sid=abc; csrftoken=def", "Authorization": "Bearer abc.def", "X-Api-Key": "k1"}
    assert Redactor().redact({"headers": headers}) == {"headers": dict.fromkeys(headers, CENSOR)}


def test_it_censors_keys_glued_from_words() -> None:
    out = Redactor().redact({"csrfmiddlewaretoken": "x", "userpassword": "y", "passwordHash": "z", "secretary": "w"})
    assert out == {"csrfmiddlewaretoken": CENSOR, "userpassword": CENSOR, "passwordHash": CENSOR, "secretary": "w"}


def test_no_shape_leaves_the_process_in_a_span_exported_over_otlp() -> None:
    """The OTLP sink (``otlp_endpoint``) gets spans redacted like every record: every shape written into a
    span's name, attributes (flat, nested, in a list) and error message is absent from the protobuf
    bodies a real collector receives (protobuf keeps text as raw UTF-8, so a byte search finds it)."""
    from otlp_collector import Collector

    collector = Collector()
    bodies: list[bytes] = []
    original = collector.take

    def keep(headers: dict[str, str], body: bytes) -> None:
        bodies.append(gzip.decompress(body))
        original(headers, body)

    collector.take = keep  # type: ignore[method-assign]
    try:
        opswatch.init(console=False, capture_stdlib=False, otlp_endpoint=collector.endpoint)
        for _, text, _ in SHAPES:
            try:
                with opswatch.span(f"charge {text}", note=text, attributes={"payment": {"detail": [text]}}):
                    raise ValueError(f"upstream said {text}")
            except ValueError:
                pass
        assert opswatch.flush(20)
    finally:
        opswatch.shutdown(2)
        collector.close()
    assert len(collector.spans) == len(SHAPES)
    exported = b"".join(bodies)
    for name, _, needles in SHAPES:
        for needle in needles:
            assert needle.encode() not in exported, (name, needle)
