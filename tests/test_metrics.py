"""Business metrics: the seed's catalog as typed calls that never raise into business code."""

from __future__ import annotations

import decimal
import inspect
from typing import Any

import pytest

import opswatch
from opswatch import metrics
from opswatch.metrics import MetricSpec
from opswatch.testing import capture_logs

SEED_CATALOG = {
    "donation": ["completed", "refunded", "recurring_created", "recurring_canceled"],
    "email": ["campaign_created", "campaign_sent", "opened", "clicked", "unsubscribed"],
    "member": ["created", "deleted", "activity"],
    "organization": ["created", "subscription_upgraded", "subscription_downgraded", "quota_usage"],
    "expense": ["created", "approved", "rejected"],
    "ai": ["report_generated", "email_suggested", "receipt_ocr"],
}

#: A valid value for each kind of field.
VALID = {
    "id": "id-1",
    "text": "card",
    "amount": 100,
    "non-negative number": 1.5,
    "count": 3,
    "ratio": 0.9,
    "currency": "USD",
    "flag": False,
}


def metric_records(logs: list[dict]) -> list[dict]:
    return [r for r in logs if r["logger"] == "metrics"]


def required_args(spec: MetricSpec) -> dict[str, Any]:
    return {f.name: VALID[f.check.name] for f in spec.fields if f.required}


def a_donation(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "donation_id": "don_1",
        "amount": 100,
        "currency": "USD",
        "method": "card",
        "recurring": False,
        "church_id": "church_1",
        "donor_id": "donor_1",
    }
    args.update(changes)
    return {k: v for k, v in args.items() if v is not ...}


def test_it_is_the_catalog_object_on_the_package() -> None:
    assert opswatch.metrics is metrics
    assert "metrics" in opswatch.__all__
    assert callable(metrics.event)
    assert "catalog" in (type(metrics).__doc__ or "")


def test_it_offers_the_seeds_whole_catalog() -> None:
    expected = {f"{category}.{event}" for category, events in SEED_CATALOG.items() for event in events}
    assert set(metrics.catalog()) == expected
    for category, events in SEED_CATALOG.items():
        for event in events:
            assert callable(getattr(getattr(metrics, category), event))


@pytest.mark.parametrize("name", sorted(metrics.catalog()))
def test_it_writes_one_info_record_per_metric_with_its_fields(name: str) -> None:
    spec = metrics.catalog()[name]
    category, event = name.split(".")
    args = required_args(spec)
    with capture_logs() as logs:
        getattr(getattr(metrics, category), event)(**args)
    [record] = metric_records(logs)
    assert record["level"] == "info"
    assert record["operation"] == f"metrics.{name}"
    for key, value in args.items():
        assert record[key] == value
    assert "invalid_fields" not in record


@pytest.mark.parametrize("name", sorted(metrics.catalog()))
def test_it_documents_every_field(name: str) -> None:
    category, event = name.split(".")
    method = getattr(getattr(metrics, category), event)
    doc = inspect.getdoc(method) or ""
    params = [p for p in inspect.signature(method).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert params
    for param in params:
        assert f"{param.name}: " in doc, f"{name}: {param.name} undocumented"
    assert f"metrics.{name}" in doc


def test_it_types_the_signature_with_the_seeds_required_fields() -> None:
    params = inspect.signature(metrics.donation.completed).parameters
    required = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and p.default is p.empty}
    assert required == {"donation_id", "amount", "method", "recurring", "church_id"}
    assert {"currency", "campaign_id", "donor_id"} <= set(params)
    sent = inspect.signature(metrics.email.campaign_sent).parameters
    assert {"campaign_id", "campaign_name", "recipient_count", "success_count", "failure_count"} <= set(sent)


def test_it_records_the_seeds_donation_example() -> None:
    with capture_logs() as logs:
        metrics.donation.completed(**a_donation(campaign_id="camp_1"))
    [record] = metric_records(logs)
    assert record["operation"] == "metrics.donation.completed"
    assert record["amount"] == 100
    assert record["currency"] == "USD"
    assert record["church_id"] == "church_1"
    assert record["recurring"] is False


def test_it_accepts_the_seeds_dict_with_camel_case_keys() -> None:
    with capture_logs() as logs:
        metrics.ai.report_generated(
            {"reportType": "donation_summary", "tokensUsed": 1500, "costUsd": 0.003, "churchId": "c1"}
        )
    [record] = metric_records(logs)
    assert record["operation"] == "metrics.ai.report_generated"
    assert (record["report_type"], record["tokens_used"], record["cost_usd"]) == ("donation_summary", 1500, 0.003)


def test_it_normalizes_currency_codes_and_decimal_amounts() -> None:
    with capture_logs() as logs:
        metrics.donation.completed(**a_donation(currency="eur", amount=decimal.Decimal("12.50")))
    [record] = metric_records(logs)
    assert record["currency"] == "EUR"
    assert record["amount"] == 12.5


def test_it_treats_none_as_an_absent_optional_field() -> None:
    with capture_logs() as logs:
        metrics.donation.completed(**a_donation(donor_id=None))
    [record] = metric_records(logs)
    assert "donor_id" not in record
    assert "invalid_fields" not in record


def test_it_carries_extra_context_fields_but_not_a_foreign_operation() -> None:
    with capture_logs() as logs:
        metrics.member.activity(
            member_id="m1", action="viewed_reports", church_id="c1", duration=120, page="/reports",
            operation="something.else",
        )
    [record] = metric_records(logs)
    assert record["page"] == "/reports"
    assert record["operation"] == "metrics.member.activity"


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"amount": -5}, "amount", "must not be negative"),
        ({"amount": "100"}, "amount", "expected a number"),
        ({"amount": float("nan")}, "amount", "finite"),
        ({"amount": True}, "amount", "expected a number"),
        ({"currency": "XYZ"}, "currency", "unknown currency code"),
        ({"currency": 840}, "currency", "ISO 4217"),
        ({"recurring": "yes"}, "recurring", "expected true or false"),
        ({"donation_id": ...}, "donation_id", "missing required field"),
        ({"donation_id": ""}, "donation_id", "must not be empty"),
        ({"church_id": 1.5}, "church_id", "expected an id"),
        ({"method": ["card"]}, "method", "expected text"),
    ],
)
def test_it_warns_about_bad_input_and_keeps_the_valid_fields(
    change: dict[str, Any], field: str, problem: str
) -> None:
    with capture_logs() as logs:
        result = metrics.donation.completed(**a_donation(**change))
    assert result is None
    info, warn = metric_records(logs)
    assert info["operation"] == "metrics.donation.completed"
    assert field not in info
    assert info["invalid_fields"] == [field]
    assert info["donor_id"] == "donor_1"  # the rest is kept
    assert warn["level"] == "warn"
    assert warn["operation"] == "metrics.invalid"
    assert warn["metric"] == "donation.completed"
    assert warn["invalid_fields"] == [field]
    assert len(warn["problems"]) == 1
    assert warn["problems"][0].startswith(f"{field}: ")
    assert problem in warn["problems"][0]


def test_it_reports_every_problem_of_one_call_in_one_warning() -> None:
    with capture_logs() as logs:
        metrics.email.campaign_sent(campaign_id="camp", campaign_name="Weekly", recipient_count=-1,
                                    success_count=1.5, church_id="c1")  # type: ignore[call-arg, arg-type]
    _, warn = metric_records(logs)
    assert warn["invalid_fields"] == ["recipient_count", "success_count", "failure_count"]


def test_it_does_not_raise_on_positional_arguments() -> None:
    with capture_logs() as logs:
        metrics.expense.rejected("exp_1", "c1")  # type: ignore[misc]
    info, warn = metric_records(logs)
    assert info["operation"] == "metrics.expense.rejected"
    assert warn["problems"][0] == "fields must be given by keyword (or as one dict)"


def test_it_records_a_teams_own_event() -> None:
    with capture_logs() as logs:
        metrics.event("volunteer.shift_signed_up", shift_id="s1", church_id="c1")
    [record] = metric_records(logs)
    assert record["operation"] == "metrics.volunteer.shift_signed_up"
    assert record["shift_id"] == "s1"


@pytest.mark.parametrize("name", ["", "has space", ".leading", "a..b", 42, "x" * 201])
def test_it_warns_about_a_bad_event_name_instead_of_raising(name: Any) -> None:
    with capture_logs() as logs:
        metrics.event(name, value=1)
    [warn] = metric_records(logs)
    assert warn["operation"] == "metrics.invalid"
    assert warn["invalid_fields"] == ["name"]


def test_it_redacts_metric_fields_like_any_record() -> None:
    with capture_logs() as logs:
        metrics.donation.completed(**a_donation(donor_id="jane.doe@example.com", card_number="4242424242424242"))
    [record] = metric_records(logs)
    assert "jane.doe@example.com" not in str(record)
    assert "4242424242424242" not in str(record)
