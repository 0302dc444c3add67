"""Redaction: keys by their words, values by their shape, paths from settings; never mutates, never raises."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import opswatch
from opswatch.redact import Redactor, key_words, luhn_valid, parse_path

CENSOR = "[REDACTED]"


def redact(value: Any, **options: Any) -> Any:
    return Redactor(**options).redact(value)


@pytest.mark.parametrize(
    "key",
    ["password", "DB_PASSWORD", "passwd", "accessToken", "access_token", "refresh_token", "x-api-key",
     "apiKey", "api_key", "APIKEY", "stripeSecretKey", "client_secret", "clientSecret", "secret",
     "authorization", "Authorization", "auth", "basic_auth", "credentials", "private_key", "privateKey",
     "token", "csrf_token", "X-CSRF-Token", "xsrfToken", "session", "sessionId", "session_id", "cookie",
     "Set-Cookie", "set-cookie", "card_number", "cardNumber", "cvv", "cvc", "ssn", "id_token"],
)
def test_it_censors_secret_keys_in_any_case_style(key: str) -> None:
    assert redact({key: "value-1"}) == {key: CENSOR}


@pytest.mark.parametrize(
    "key",
    ["tokensUsed", "tokens_used", "tokenizer", "author", "authors", "session_count", "sessionCount",
     "token_count", "keyboard", "sort_key", "primary_key_name", "monitorSlug", "amount"],
)
def test_it_keeps_keys_that_only_look_like_secrets(key: str) -> None:
    assert redact({key: "value-1"}) == {key: "value-1"}


def test_it_splits_keys_into_words() -> None:
    assert key_words("stripeSecretKey") == ("stripe", "secret", "key")
    assert key_words("x-api-key") == ("x", "api", "key")
    assert key_words("DB_PASSWORD") == ("db", "password")
    assert key_words("HTTPAuthToken") == ("http", "auth", "token")


def test_it_censors_whole_subtrees_under_secret_keys_but_keeps_none_and_booleans() -> None:
    value = {"credentials": {"user": "a", "pass": "b"}, "token": None, "session": True}
    assert redact(value) == {"credentials": CENSOR, "token": None, "session": True}


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("card 4242 4242 4242 4242 declined", "4242 4242 4242 4242"),
        ("card 4242-4242-4242-4242 declined", "4242-4242-4242-4242"),
        ("card 4111111111111111 declined", "4111111111111111"),
        ("amex 378282246310005", "378282246310005"),
        ("13 digits 4222222222222", "4222222222222"),
        ("Authorization: Bearer abc.DEF-123_456~xyz", "abc.DEF-123_456~xyz"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
         "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"),
        ("postgres://app:s3cr3t@db.internal:5432/giving", "s3cr3t"),
        ("key -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- end", "MIIEow"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("restricted rk_test_4eC39HqLyjWDarjtT1zdp7dc", "rk_test_4eC39HqLyjWDarjtT1zdp7dc"),
        ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("gh ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
        ("slack xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl"),
        ("hook https://hooks.slack.com/services/T000/B000/XXXXXXXX", "T000/B000/XXXXXXXX"),
        ("ssn 123-45-6789 on file", "123-45-6789"),
    ],
)
def test_it_removes_secret_shaped_values_anywhere_in_text(text: str, secret: str) -> None:
    out = redact({"note": text, "deep": [{"x": (text,)}]})
    assert secret not in out["note"]
    assert secret not in out["deep"][0]["x"][0]
    assert CENSOR in out["note"]


@pytest.mark.parametrize(
    "text",
    ["order 4242 4242 4242 4241 (fails Luhn)", "id 1234567890123", "phone 555-123-4567",
     "ssn-like 000-12-3456", "version 1.2.3-45-6789x", "token count 12", "Basic idea"],
)
def test_it_leaves_near_misses_alone(text: str) -> None:
    assert redact(text) == text


def test_it_masks_emails_and_can_leave_them() -> None:
    assert redact("mail john.doe@example.com now") == "mail j***@example.com now"
    assert redact("mail john.doe@example.com", mask_emails=False) == "mail john.doe@example.com"


def test_it_keeps_the_user_in_url_credentials() -> None:
    assert redact("redis://default:hunter2@cache:6379") == f"redis://default:{CENSOR}@cache:6379"


def test_it_redacts_card_numbers_given_as_integers() -> None:
    assert redact({"n": 4242424242424242}) == {"n": CENSOR}
    assert redact({"n": 4242424242424241}) == {"n": 4242424242424241}


def test_it_uses_the_censor_text_from_settings() -> None:
    assert redact({"password": "x"}, censor="***") == {"password": "***"}


def test_it_checks_luhn() -> None:
    assert luhn_valid("4242424242424242")
    assert not luhn_valid("4242424242424241")


def test_it_never_mutates_the_callers_objects() -> None:
    original = {"password": "x", "nested": {"token": "y", "items": [{"secret": "z"}]}}
    snapshot = repr(original)
    redact(original, paths=["nested.items[*].other"])
    assert repr(original) == snapshot


def test_it_applies_pino_style_paths() -> None:
    value = {
        "user": {"address": "1 Main St", "name": "Ann"},
        "donor": {"ssn_last4": "1234"},
        "church": {"ssn_last4": "5678"},
        "items": [{"code": "a"}, {"code": "b"}],
    }
    out = redact(value, paths=["user.address", "*.ssn_last4", "items[*].code"])
    assert out["user"] == {"address": CENSOR, "name": "Ann"}
    assert out["donor"]["ssn_last4"] == CENSOR and out["church"]["ssn_last4"] == CENSOR
    assert out["items"] == [{"code": CENSOR}, {"code": CENSOR}]


def test_it_removes_at_paths_in_remove_mode() -> None:
    out = redact({"user": {"address": "x", "name": "Ann"}, "password": "p"}, paths=["user.address"], mode="remove")
    assert out == {"user": {"name": "Ann"}}


@pytest.mark.parametrize("path", ["", ".a", "a.", "a..b", "a[", "a[x]"])
def test_it_rejects_malformed_paths(path: str) -> None:
    with pytest.raises(ValueError):
        parse_path(path)


def test_it_fails_at_init_naming_the_setting_for_a_malformed_path() -> None:
    with pytest.raises(opswatch.ConfigError, match="redact_paths"):
        opswatch.init(redact_paths=["a..b"])


def test_it_adds_extra_secret_key_words() -> None:
    assert redact({"churchPin": "1", "giving_code": "2"}, extra_keys=["giving_code"]) == {
        "churchPin": CENSOR,
        "giving_code": CENSOR,
    }


@dataclasses.dataclass
class Donor:
    name: str
    password: str


class PydanticLike:
    """Anything with pydantic v2's ``model_dump`` is redacted in its dumped form."""

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return {"email": "ann@example.com", "api_key": "k"}


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque token sk_live_4eC39HqLyjWDarjtT1zdp7dc>"


def test_it_redacts_objects_in_their_serialized_form() -> None:
    out = redact(
        {
            "donor": Donor("Ann", "hunter2"),
            "model": PydanticLike(),
            "opaque": Opaque(),
            "amount": decimal.Decimal("10.50"),
            "when": datetime.datetime(2025, 11, 1, 2, 0, tzinfo=datetime.UTC),
            "tags": {"b", "a"},
            "raw": b"bytes ok",
            "blob": b"\xff\xfe",
        }
    )
    assert out["donor"] == {"name": "Ann", "password": CENSOR}
    assert out["model"] == {"email": "a***@example.com", "api_key": CENSOR}
    assert "sk_live" not in out["opaque"] and out["opaque"].startswith("<unserializable Opaque")
    assert out["amount"] == "10.50"
    assert out["when"] == "2025-11-01T02:00:00+00:00"
    assert out["tags"] == ["a", "b"]
    assert out["raw"] == "bytes ok"
    assert out["blob"] == "<bytes len=2>"


def test_it_marks_circular_references_and_deep_nesting() -> None:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    assert redact(loop) == {"name": "loop", "self": "[circular]"}
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(50):
        node["child"] = {}
        node = node["child"]
    text = repr(redact(deep))
    assert "[depth limit]" in text


def test_it_keeps_shared_but_not_circular_objects() -> None:
    shared = {"a": 1}
    assert redact({"x": shared, "y": shared}) == {"x": {"a": 1}, "y": {"a": 1}}


def test_it_does_not_raise_for_objects_whose_repr_raises() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "unserializable Broken" in redact({"b": Broken()})["b"]


def test_it_keeps_the_other_fields_when_one_cannot_be_walked() -> None:
    class BrokenMapping(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise KeyError(key)

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("no")

        def __len__(self) -> int:
            return 1

    class BrokenKey:
        def __str__(self) -> str:
            raise RuntimeError("no")

    out = redact({"ok": "kept", "broken": BrokenMapping(), BrokenKey(): 1, "password": BrokenMapping()})
    assert out == {"ok": "kept", "broken": "[unredactable: RuntimeError]", "password": CENSOR}


def test_it_redacts_secrets_and_emails_used_as_keys() -> None:
    out = redact({"per_user": {"ann@example.com": 3}, "sk_live_abcdefghijkl": "x"})
    assert out == {"per_user": {"a***@example.com": 3}, CENSOR: "x"}
    assert redact({"ann@example.com": 3}, enabled=False) == {"ann@example.com": 3}


def test_it_redacts_messages_fields_and_exception_messages_in_records() -> None:
    opswatch.init(console=False)
    from opswatch.testing import capture_logs

    with capture_logs() as logs:
        try:
            raise ValueError("charge failed for 4242 4242 4242 4242")
        except ValueError as err:
            opswatch.get_logger("x").error(
                "token Bearer abcdefghijklmnop for ann@example.com", {"payment": {"cvv": "123"}}, err
            )
    (record,) = logs
    assert "abcdefghijklmnop" not in record["message"] and "ann@" not in record["message"]
    assert record["payment"] == {"cvv": CENSOR}
    assert "4242" not in record["error"]["message"]


def test_it_can_turn_redaction_off() -> None:
    opswatch.init(console=False, redact=False)
    from opswatch.testing import capture_logs

    with capture_logs() as logs:
        opswatch.get_logger("x").info("m", password="visible")
    assert logs[0]["password"] == "visible"


def test_it_leaves_digit_runs_inside_hex_ids_alone() -> None:
    # 16 digits that pass Luhn, but glued to hex letters: an event or request id, not a card.
    request_id = "9f8e7d6c5b4a3f2e4242424242424242"
    assert redact({"request_id": request_id}) == {"request_id": request_id}
    assert redact(f"id={request_id}") == f"id={request_id}"


def _charge_with_secrets_in_the_source() -> None:
    card = "4242 4242 4242 4242"  # owner ann@example.com
    stripe = {"api_key": "plain-words-no-shape", "sort_key": "created"}
    password: str = "hunter2"
    raise ValueError(f"declined {card[-4:]} {stripe} {password} with sk_live_abcdefghijklmnop")


def test_it_redacts_the_source_context_of_stack_frames() -> None:
    opswatch.init(console=False)
    from opswatch.testing import capture_logs

    with capture_logs() as logs:
        try:
            _charge_with_secrets_in_the_source()
        except ValueError as err:
            opswatch.get_logger("x").error("charge failed", error=err)
    (record,) = logs
    frame = record["error"]["stack"][-1]
    assert frame["function"] == "_charge_with_secrets_in_the_source"
    source = "\n".join([*frame["pre_context"], frame["context_line"], *frame["post_context"]])
    assert "card = " in source and "raise ValueError" in frame["context_line"]
    assert "4242 4242" not in source and "ann@example.com" not in source
    assert "sk_live_abcdefghijklmnop" not in source
    # A literal given to a secret-named key has no shape to find; the source line gives it away by name.
    assert '"api_key": "[REDACTED]"' in source and '"sort_key": "created"' in source
    # (the text rule for "key: value" also censors the annotation; the literal is gone either way)
    assert "hunter2" not in source
    assert any(line.strip().startswith("password:") and line.endswith('"[REDACTED]"') for line in source.splitlines())
