"""Grouping: which error records become one issue. Real exceptions, raised from real places."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from opswatch.record import serialize_exception
from opswatch.server.issues.grouping import GROUPING_VERSION, group, parameterize

# -- the cast: a small payments module ---------------------------------------------------------------------


class PaymentError(Exception):
    pass


class CardDeclined(Exception):
    pass


def charge_card(donation_id: int) -> None:
    raise PaymentError(f"Payment failed for donation {donation_id}")


def refund(donation_id: int) -> None:
    raise PaymentError(f"Payment failed for donation {donation_id}")


def fail_with(kind: type[Exception]) -> None:
    raise kind("boom")  # two exception types, one line


def recurse(depth: int) -> None:
    if depth == 0:
        raise RecursionError("too deep")
    recurse(depth - 1)


def pay_with_cause(cause: Exception, donation_id: int) -> None:
    try:
        raise cause
    except Exception as err:
        raise PaymentError(f"Payment failed for donation {donation_id}") from err


def error_record(fn: Callable[..., Any], *args: Any, **fields: Any) -> dict[str, Any]:
    """Call ``fn``, catch what it raises, and return the record the SDK would log for it."""
    try:
        fn(*args)
    except Exception as err:
        return {"level": "error", "message": "payment failed", "error": serialize_exception(err), **fields}
    raise AssertionError(f"{fn.__name__} did not raise")


def message_record(message: str, **fields: Any) -> dict[str, Any]:
    return {"level": "error", "message": message, **fields}


# -- stack grouping ------------------------------------------------------------------------------------------


def test_it_groups_messages_that_differ_only_by_an_id() -> None:
    first = group(error_record(charge_card, 123))
    second = group(error_record(charge_card, 456))
    assert first.hash == second.hash
    assert first.method == "stack"


def test_it_splits_two_exception_types_raised_at_one_line() -> None:
    value_error = group(error_record(fail_with, ValueError))
    key_error = group(error_record(fail_with, KeyError))
    assert value_error.hash != key_error.hash


def test_it_splits_one_exception_type_raised_from_two_places() -> None:
    assert group(error_record(charge_card, 1)).hash != group(error_record(refund, 1)).hash


def test_it_ignores_line_numbers_and_install_paths() -> None:
    record = error_record(charge_card, 1)
    moved = copy.deepcopy(record)
    for frame in moved["error"]["stack"]:
        frame["line"] += 40
        frame["file"] = "/srv/releases/2025-11-02/" + frame["file"].rsplit("/", 1)[-1]
    assert group(record).hash == group(moved).hash


def test_it_ignores_memory_addresses_and_generated_suffixes_in_frames() -> None:
    def record(function: str, module: str = "app.jobs") -> dict[str, Any]:
        frame = {"file": "/app/jobs.py", "line": 3, "function": function, "module": module, "in_app": True}
        return {"level": "error", "error": {"type": "TypeError", "message": "x", "stack": [frame]}}

    assert (
        group(record("<lambda> at 0x7f3a2b1c9d40")).hash == group(record("<lambda> at 0x55d0c0ffee00")).hash
    )
    assert group(record("lambda$run$0")).hash == group(record("lambda$run$3")).hash
    assert group(record("Handler$1.call")).hash == group(record("Handler$2.call")).hash
    assert group(record("run")).hash != group(record("stop")).hash


def test_it_collapses_recursion_so_depth_does_not_split_an_issue() -> None:
    assert group(error_record(recurse, 3)).hash == group(error_record(recurse, 7)).hash


def test_it_uses_only_in_app_frames() -> None:
    record = error_record(charge_card, 1)
    with_library = copy.deepcopy(record)
    library_frame = {
        "file": "/usr/lib/python3.11/site-packages/stripe/api.py",
        "line": 10,
        "function": "request",
        "module": "stripe.api",
        "in_app": False,
    }
    with_library["error"]["stack"].append(library_frame)
    assert group(record).hash == group(with_library).hash


def test_it_treats_library_paths_as_not_in_app_when_the_flag_is_missing() -> None:
    def record(path: str, message: str) -> dict[str, Any]:
        frame = {"file": path, "line": 1, "function": "send", "module": None}
        return {"level": "error", "error": {"type": "ConnectionError", "message": message, "stack": [frame]}}

    library = "/venv/lib/python3.11/site-packages/httpx/_client.py"
    assert group(record(library, "refused")).method == "exception"
    assert group(record(library, "refused")).hash != group(record(library, "reset")).hash
    assert group(record("/app/payments.py", "refused")).method == "stack"


# -- chained exceptions --------------------------------------------------------------------------------------


def test_it_groups_a_chain_by_every_exception_in_it() -> None:
    declined_1 = group(error_record(pay_with_cause, CardDeclined("card 4242 declined"), 1))
    declined_2 = group(error_record(pay_with_cause, CardDeclined("card 1881 declined"), 2))
    network = group(error_record(pay_with_cause, ConnectionError("reset"), 1))
    assert declined_1.hash == declined_2.hash
    assert declined_1.hash != network.hash
    assert "type:" + serialize_exception(CardDeclined()).get("type", "") in declined_1.components


def test_it_titles_a_chain_after_the_raised_exception() -> None:
    grouping = group(error_record(pay_with_cause, CardDeclined("no"), 7))
    assert grouping.title == "PaymentError: Payment failed for donation 7"
    assert grouping.culprit.endswith(" in pay_with_cause")


# -- exceptions without frames, and plain messages --------------------------------------------------------


def test_it_groups_unraised_exceptions_by_type_and_parameterized_message() -> None:
    def record(err: Exception) -> dict[str, Any]:
        return {"level": "error", "message": "x", "error": serialize_exception(err)}

    assert record(PaymentError("x"))["error"]["stack"] == []
    one = group(record(PaymentError("Payment failed for donation 123")))
    two = group(record(PaymentError("Payment failed for donation 456")))
    other_type = group(record(CardDeclined("Payment failed for donation 123")))
    assert one.method == "exception"
    assert one.hash == two.hash
    assert one.hash != other_type.hash


def test_it_groups_plain_messages_by_their_parameterized_text() -> None:
    one = group(message_record("Payment failed for donation 123"))
    two = group(message_record("Payment failed for donation 456"))
    other = group(message_record("Refund failed for donation 123"))
    assert one.method == "message"
    assert one.hash == two.hash
    assert one.hash != other.hash
    assert one.title == "Payment failed for donation 123"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "user 550e8400-e29b-41d4-a716-446655440000 not found",
            "user 6ba7b810-9dad-11d1-80b4-00c04fd430c8 not found",
        ),
        ("no account for ann@example.org", "no account for b***@example.com"),
        ("object at 0x7f3a2b1c9d40 is closed", "object at 0x55d0c0ffee00 is closed"),
        ("checksum deadbeef12345678 mismatch", "checksum 0badf00d87654321 mismatch"),
        ("unknown field 'amount'", 'unknown field "church_id"'),
        ("connect to 10.0.0.12:5432 refused", "connect to 192.168.1.7:6432 refused"),
        ("lease expired at 2025-11-02T05:30:00.123Z", "lease expired at 2025-11-03 06:30:00"),
        ("charge ch_3MmlLrLkdIwHu7ix0snN0B15 declined", "charge ch_9XyzAbCdEf12GhIj34KlMn56 declined"),
        ("took 1500 ms", "took 20 ms"),
    ],
)
def test_it_replaces_variable_parts_of_messages(first: str, second: str) -> None:
    assert parameterize(first) == parameterize(second)
    assert group(message_record(first)).hash == group(message_record(second)).hash


def test_it_keeps_words_that_merely_contain_digits() -> None:
    assert parameterize("utf8 decode failed over ipv4") == "utf8 decode failed over ipv4"


# -- fingerprints --------------------------------------------------------------------------------------------


def test_it_groups_by_an_explicit_fingerprint_over_everything_else() -> None:
    one = group(error_record(charge_card, 1, fingerprint=["stripe-outage"]))
    two = group(error_record(fail_with, ValueError, fingerprint=["stripe-outage"]))
    assert one.method == "fingerprint"
    assert one.hash == two.hash
    assert one.hash != group(error_record(charge_card, 1)).hash


def test_it_expands_default_inside_a_fingerprint() -> None:
    tenant_a = group(error_record(charge_card, 1, fingerprint=["{{ default }}", "tenant-a"]))
    tenant_a_again = group(error_record(charge_card, 2, fingerprint=["{{default}}", "tenant-a"]))
    tenant_b = group(error_record(charge_card, 1, fingerprint=["{{ default }}", "tenant-b"]))
    elsewhere = group(error_record(refund, 1, fingerprint=["{{ default }}", "tenant-a"]))
    assert tenant_a.hash == tenant_a_again.hash
    assert tenant_a.hash != tenant_b.hash
    assert tenant_a.hash != elsewhere.hash
    assert any(part.startswith("frame:") for part in tenant_a.components)


def test_it_treats_a_fingerprint_of_only_default_as_the_default() -> None:
    plain = group(error_record(charge_card, 1))
    default_only = group(error_record(charge_card, 2, fingerprint=["{{ default }}"]))
    assert default_only.hash == plain.hash
    assert default_only.method == "stack"


def test_it_expands_type_and_message_variables() -> None:
    one = group(error_record(fail_with, ValueError, fingerprint=["{{ type }}", "billing"]))
    two = group(error_record(charge_card, 1, fingerprint=["{{ type }}", "billing"]))
    same_type = group(error_record(fail_with, ValueError, fingerprint=["{{ type }}", "billing"]))
    assert one.hash == same_type.hash
    assert one.hash != two.hash


# -- metadata ------------------------------------------------------------------------------------------------


def test_it_titles_an_issue_type_colon_first_line_and_names_the_culprit() -> None:
    grouping = group(error_record(charge_card, 123))
    assert grouping.title == "PaymentError: Payment failed for donation 123"
    assert grouping.culprit.endswith(" in charge_card")
    assert grouping.error_type is not None and grouping.error_type.endswith("PaymentError")
    multi = group(
        {"level": "error", "error": {"type": "ValueError", "message": "line one\nline two", "stack": []}}
    )
    assert multi.title == "ValueError: line one"


def test_it_names_the_operation_as_culprit_when_no_frame_is_in_app() -> None:
    grouping = group(message_record("Payment failed", operation="payment.stripe.charge"))
    assert grouping.culprit == "payment.stripe.charge"


def test_it_stamps_the_grouping_version() -> None:
    grouping = group(error_record(charge_card, 1))
    assert grouping.version == GROUPING_VERSION
    assert grouping.metadata()["version"] == GROUPING_VERSION


def test_it_never_raises_on_odd_shapes() -> None:
    for record in (
        {},
        {"error": "text"},
        {"error": {"type": None, "stack": "nope"}},
        {"error": {"type": "X", "stack": [None, 3, {"function": None}]}},
        {"fingerprint": [1, None, {"a": 1}]},
        {"message": {"formatted": "hi"}},
        {"error": {"type": "X", "cause": {"type": "Y", "cause": "bad"}}},
    ):
        grouping = group(record)
        assert len(grouping.hash) == 32
