"""Business metrics: the seed's catalog as typed calls, plus ``event()`` for a team's own.

::

    from opswatch import metrics

    metrics.donation.completed(donation_id=d.id, amount=100, currency="USD", method="card",
                               recurring=False, church_id=d.church_id)
    metrics.email.campaign_sent(campaign_id=c.id, campaign_name="Weekly Newsletter", recipient_count=150,
                                success_count=148, failure_count=2, church_id=c.church_id)
    metrics.event("volunteer.shift_signed_up", shift_id=s.id, church_id=s.church_id)

Each call writes one ``info`` record ``operation="metrics.<category>.<event>"`` with its fields, so
``SELECT church_id, SUM(amount) FROM logs WHERE operation = 'metrics.donation.completed' GROUP BY 1``
works on the server. ``help(metrics.donation.completed)`` lists the fields and what each means.

A metric call never raises into business code. A missing required field, a wrong type, a negative or
non-numeric amount or an unknown currency writes a ``warn`` record ``operation="metrics.invalid"``
(``metric``, ``problems``, ``invalid_fields``) and the metric's record keeps every valid field (and lists
``invalid_fields``). The seed's shape, one dict with camelCase keys, is accepted too.

Categories: ``donation``, ``email``, ``member``, ``organization``, ``expense``, ``ai``.
"""

from __future__ import annotations

import re
from typing import Any

from .._runtime import STATE
from ..record import INFO
from ._catalog import Ai, Donation, Email, Expense, Member, Organization
from ._fields import Amount, Count, Currency, Flag, Id, NonNegative, Ratio, Text
from ._spec import LOGGER, REGISTRY, FieldSpec, MetricSpec, report_invalid

_EVENT_NAME = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_-]+)*")
_MAX_EVENT_NAME = 200


def event(name: str, /, **fields: Any) -> None:
    """Record a team's own business event: one ``info`` record ``operation="metrics.<name>"``.

    ``name`` is dotted words (``volunteer.shift_signed_up``); fields are recorded as given. A bad name
    writes a ``warn`` ``metrics.invalid`` record instead. Never raises.
    """
    try:
        if not isinstance(name, str) or len(name) > _MAX_EVENT_NAME or not _EVENT_NAME.fullmatch(name):
            report_invalid(
                str(name)[:_MAX_EVENT_NAME],
                [f"name: expected dotted words like 'volunteer.signed_up', got {name!r}"],
                ["name"],
            )
            return
        fields.pop("operation", None)
        STATE.emit(INFO, LOGGER, f"Metric {name}", None, {**fields, "operation": f"metrics.{name}"}, None)
    except Exception:  # monitoring never breaks business code
        pass


def catalog() -> dict[str, MetricSpec]:
    """Every metric of the catalog by name (``donation.completed`` ...), with its fields and docs."""
    return dict(REGISTRY)


class Metrics:
    """The business-metric catalog: ``opswatch.metrics`` is this object.

    ``donation``, ``email``, ``member``, ``organization``, ``expense`` and ``ai`` hold the seed's metrics
    (``metrics.donation.completed(...)``); ``event(name, **fields)`` records a team's own; ``catalog()``
    lists every metric with its fields.
    """

    __slots__ = ("ai", "donation", "email", "expense", "member", "organization")

    def __init__(self) -> None:
        #: Donations: ``completed``, ``refunded``, ``recurring_created``, ``recurring_canceled``.
        self.donation = Donation()
        #: Email campaigns: ``campaign_created``, ``campaign_sent``, ``opened``, ``clicked``,
        #: ``unsubscribed``.
        self.email = Email()
        #: Members: ``created``, ``deleted``, ``activity``.
        self.member = Member()
        #: Organizations: ``created``, ``subscription_upgraded``, ``subscription_downgraded``,
        #: ``quota_usage``.
        self.organization = Organization()
        #: Expenses: ``created``, ``approved``, ``rejected``.
        self.expense = Expense()
        #: AI features: ``report_generated``, ``email_suggested``, ``receipt_ocr``.
        self.ai = Ai()

    def event(self, name: str, /, **fields: Any) -> None:
        """Record a team's own business event (see ``opswatch.metrics.event``). Never raises."""
        event(name, **fields)

    def catalog(self) -> dict[str, MetricSpec]:
        """Every metric of the catalog by name, with its fields and docs."""
        return catalog()

    def __repr__(self) -> str:
        return f"<opswatch.metrics: {len(REGISTRY)} metrics in 6 categories, and event()>"


#: The catalog, as ``from opswatch import metrics`` gives it.
CATALOG = Metrics()
donation = CATALOG.donation
email = CATALOG.email
member = CATALOG.member
organization = CATALOG.organization
expense = CATALOG.expense
ai = CATALOG.ai


__all__ = [
    "CATALOG",
    "Amount",
    "Count",
    "Currency",
    "FieldSpec",
    "Flag",
    "Id",
    "MetricSpec",
    "Metrics",
    "NonNegative",
    "Ratio",
    "Text",
    "ai",
    "catalog",
    "donation",
    "email",
    "event",
    "expense",
    "member",
    "organization",
]
