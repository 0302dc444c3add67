"""The seed's business-metric catalog: one class per category, one typed method per event.

Every method writes one ``info`` record ``operation="metrics.<category>.<event>"`` with its fields, named
as the keywords (snake_case; the server's ``logs`` view also answers to the seed's camelCase names).
Required fields are the ones every seed example passes; the rest are optional. Bad input never raises:
see ``opswatch.metrics``. The method bodies are never run; ``@category`` replaces them with recorders.
"""

from __future__ import annotations

from typing import Any

from ._fields import Amount, Count, Currency, Flag, Id, NonNegative, Ratio, Text
from ._spec import category, metric


@category("donation")
class Donation:
    """Donations: completed, refunded, recurring plans created and canceled."""

    @metric
    def completed(
        self,
        *,
        donation_id: Id,
        amount: Amount,
        method: Text,
        recurring: Flag,
        church_id: Id,
        currency: Currency | None = None,
        campaign_id: Id | None = None,
        donor_id: Id | None = None,
        **extra: Any,
    ) -> None:
        """A donation was paid (``metrics.donation.completed``).

        donation_id: the donation's id.
        amount: amount in currency units (100 means $100.00); not negative.
        method: how it was paid: card, ach, cash, check ...
        recurring: True when the payment came from a recurring plan.
        church_id: the organization that received it.
        currency: ISO 4217 code (USD, EUR ...), recorded upper case.
        campaign_id: the fundraising campaign it went to, if any.
        donor_id: who gave, if known.
        """

    @metric
    def refunded(
        self,
        *,
        donation_id: Id,
        amount: Amount,
        church_id: Id,
        currency: Currency | None = None,
        reason: Text | None = None,
        donor_id: Id | None = None,
        **extra: Any,
    ) -> None:
        """A donation was refunded, in part or whole (``metrics.donation.refunded``).

        donation_id: the refunded donation's id.
        amount: amount refunded, in currency units; not negative.
        church_id: the organization that refunded it.
        currency: ISO 4217 code of the refund.
        reason: why (requested_by_customer, duplicate, fraudulent ...).
        donor_id: who gave, if known.
        """

    @metric
    def recurring_created(
        self,
        *,
        subscription_id: Id,
        amount: Amount,
        church_id: Id,
        interval: Text | None = None,
        currency: Currency | None = None,
        donor_id: Id | None = None,
        **extra: Any,
    ) -> None:
        """A donor set up a recurring donation (``metrics.donation.recurring_created``).

        subscription_id: the recurring plan's id.
        amount: amount per charge, in currency units; not negative.
        church_id: the organization that receives it.
        interval: how often it charges: week, month, year ...
        currency: ISO 4217 code of the charges.
        donor_id: who set it up, if known.
        """

    @metric
    def recurring_canceled(
        self,
        *,
        subscription_id: Id,
        church_id: Id,
        reason: Text | None = None,
        donor_id: Id | None = None,
        **extra: Any,
    ) -> None:
        """A recurring donation was canceled (``metrics.donation.recurring_canceled``).

        subscription_id: the recurring plan's id.
        church_id: the organization it paid.
        reason: why it ended (donor_request, payment_failed ...).
        donor_id: whose plan it was, if known.
        """


@category("email")
class Email:
    """Email campaigns: created, sent, opened, clicked, unsubscribed."""

    @metric
    def campaign_created(
        self,
        *,
        campaign_id: Id,
        church_id: Id,
        campaign_name: Text | None = None,
        recipient_count: Count | None = None,
        **extra: Any,
    ) -> None:
        """A campaign was drafted (``metrics.email.campaign_created``).

        campaign_id: the campaign's id.
        church_id: the organization that owns it.
        campaign_name: its title, e.g. Weekly Newsletter.
        recipient_count: how many people it is addressed to.
        """

    @metric
    def campaign_sent(
        self,
        *,
        campaign_id: Id,
        campaign_name: Text,
        recipient_count: Count,
        success_count: Count,
        failure_count: Count,
        church_id: Id,
        **extra: Any,
    ) -> None:
        """A campaign went out (``metrics.email.campaign_sent``).

        campaign_id: the campaign's id.
        campaign_name: its title, e.g. Weekly Newsletter.
        recipient_count: how many addresses it was sent to.
        success_count: how many were accepted by the email provider.
        failure_count: how many failed.
        church_id: the organization that sent it.
        """

    @metric
    def opened(
        self,
        *,
        campaign_id: Id,
        church_id: Id,
        member_id: Id | None = None,
        **extra: Any,
    ) -> None:
        """A recipient opened a campaign email (``metrics.email.opened``).

        campaign_id: the campaign's id.
        church_id: the organization that sent it.
        member_id: the recipient, if known.
        """

    @metric
    def clicked(
        self,
        *,
        campaign_id: Id,
        church_id: Id,
        url: Text | None = None,
        member_id: Id | None = None,
        **extra: Any,
    ) -> None:
        """A recipient clicked a link in a campaign email (``metrics.email.clicked``).

        campaign_id: the campaign's id.
        church_id: the organization that sent it.
        url: the link that was clicked.
        member_id: the recipient, if known.
        """

    @metric
    def unsubscribed(
        self,
        *,
        church_id: Id,
        campaign_id: Id | None = None,
        member_id: Id | None = None,
        reason: Text | None = None,
        **extra: Any,
    ) -> None:
        """A recipient unsubscribed (``metrics.email.unsubscribed``).

        church_id: the organization they unsubscribed from.
        campaign_id: the campaign whose link they used, if any.
        member_id: who unsubscribed, if known.
        reason: the reason they gave, if any.
        """


@category("member")
class Member:
    """Members of an organization: created, deleted, activity."""

    @metric
    def created(
        self,
        *,
        member_id: Id,
        church_id: Id,
        source: Text | None = None,
        **extra: Any,
    ) -> None:
        """A member was added (``metrics.member.created``).

        member_id: the new member's id.
        church_id: the organization they joined.
        source: how they were added: manual, import, signup_form ...
        """

    @metric
    def deleted(
        self,
        *,
        member_id: Id,
        church_id: Id,
        reason: Text | None = None,
        **extra: Any,
    ) -> None:
        """A member was removed (``metrics.member.deleted``).

        member_id: the removed member's id.
        church_id: the organization they left.
        reason: why, if known.
        """

    @metric
    def activity(
        self,
        *,
        member_id: Id,
        action: Text,
        church_id: Id,
        duration: NonNegative | None = None,
        **extra: Any,
    ) -> None:
        """A member did something worth counting (``metrics.member.activity``).

        member_id: who acted.
        action: what they did, e.g. viewed_reports.
        church_id: their organization.
        duration: how long it took, in seconds; not negative.
        """


@category("organization")
class Organization:
    """Organizations (churches): created, plan changes, quota usage."""

    @metric
    def created(
        self,
        *,
        church_id: Id,
        organization_name: Text | None = None,
        plan: Text | None = None,
        **extra: Any,
    ) -> None:
        """An organization signed up (``metrics.organization.created``).

        church_id: the new organization's id.
        organization_name: its name.
        plan: the plan it started on (free, pro ...).
        """

    @metric
    def subscription_upgraded(
        self,
        *,
        church_id: Id,
        from_plan: Text,
        to_plan: Text,
        amount: Amount | None = None,
        currency: Currency | None = None,
        **extra: Any,
    ) -> None:
        """An organization moved to a bigger plan (``metrics.organization.subscription_upgraded``).

        church_id: the organization's id.
        from_plan: the plan it left.
        to_plan: the plan it moved to.
        amount: the new price per billing period, in currency units; not negative.
        currency: ISO 4217 code of the price.
        """

    @metric
    def subscription_downgraded(
        self,
        *,
        church_id: Id,
        from_plan: Text,
        to_plan: Text,
        amount: Amount | None = None,
        currency: Currency | None = None,
        reason: Text | None = None,
        **extra: Any,
    ) -> None:
        """An organization moved to a smaller plan (``metrics.organization.subscription_downgraded``).

        church_id: the organization's id.
        from_plan: the plan it left.
        to_plan: the plan it moved to.
        amount: the new price per billing period, in currency units; not negative.
        currency: ISO 4217 code of the price.
        reason: why, if known.
        """

    @metric
    def quota_usage(
        self,
        *,
        church_id: Id,
        resource: Text,
        used: NonNegative,
        limit: NonNegative,
        **extra: Any,
    ) -> None:
        """How much of a plan's quota is used (``metrics.organization.quota_usage``).

        church_id: the organization's id.
        resource: what is counted: members, emails_per_month, ai_reports ...
        used: how much is used now; not negative.
        limit: how much the plan allows; not negative.
        """


@category("expense")
class Expense:
    """Expenses: created, approved, rejected."""

    @metric
    def created(
        self,
        *,
        expense_id: Id,
        amount: Amount,
        church_id: Id,
        currency: Currency | None = None,
        category: Text | None = None,
        submitted_by: Id | None = None,
        **extra: Any,
    ) -> None:
        """An expense was submitted (``metrics.expense.created``).

        expense_id: the expense's id.
        amount: amount in currency units; not negative.
        church_id: the organization it is charged to.
        currency: ISO 4217 code.
        category: its category (utilities, payroll, missions ...).
        submitted_by: who submitted it.
        """

    @metric
    def approved(
        self,
        *,
        expense_id: Id,
        church_id: Id,
        amount: Amount | None = None,
        currency: Currency | None = None,
        approved_by: Id | None = None,
        **extra: Any,
    ) -> None:
        """An expense was approved (``metrics.expense.approved``).

        expense_id: the expense's id.
        church_id: the organization it is charged to.
        amount: amount approved, in currency units; not negative.
        currency: ISO 4217 code.
        approved_by: who approved it.
        """

    @metric
    def rejected(
        self,
        *,
        expense_id: Id,
        church_id: Id,
        reason: Text | None = None,
        rejected_by: Id | None = None,
        **extra: Any,
    ) -> None:
        """An expense was rejected (``metrics.expense.rejected``).

        expense_id: the expense's id.
        church_id: the organization it was charged to.
        reason: why it was rejected.
        rejected_by: who rejected it.
        """


@category("ai")
class Ai:
    """AI features: reports generated, emails suggested, receipts read."""

    @metric
    def report_generated(
        self,
        *,
        report_type: Text,
        tokens_used: Count,
        cost_usd: NonNegative,
        church_id: Id,
        model: Text | None = None,
        **extra: Any,
    ) -> None:
        """An AI report was generated (``metrics.ai.report_generated``).

        report_type: which report, e.g. donation_summary.
        tokens_used: tokens the model consumed.
        cost_usd: what the call cost, in US dollars; not negative.
        church_id: the organization it was generated for.
        model: the model that wrote it.
        """

    @metric
    def email_suggested(
        self,
        *,
        church_id: Id,
        tokens_used: Count | None = None,
        cost_usd: NonNegative | None = None,
        accepted: Flag | None = None,
        model: Text | None = None,
        **extra: Any,
    ) -> None:
        """AI drafted an email (``metrics.ai.email_suggested``).

        church_id: the organization it was drafted for.
        tokens_used: tokens the model consumed.
        cost_usd: what the call cost, in US dollars; not negative.
        accepted: whether the user kept the suggestion.
        model: the model that wrote it.
        """

    @metric
    def receipt_ocr(
        self,
        *,
        church_id: Id,
        success: Flag | None = None,
        confidence: Ratio | None = None,
        expense_id: Id | None = None,
        tokens_used: Count | None = None,
        cost_usd: NonNegative | None = None,
        **extra: Any,
    ) -> None:
        """A receipt was read by OCR (``metrics.ai.receipt_ocr``).

        church_id: the organization it belongs to.
        success: whether the receipt could be read.
        confidence: how sure the reader was, from 0 to 1.
        expense_id: the expense it was attached to, if any.
        tokens_used: tokens the model consumed.
        cost_usd: what the call cost, in US dollars; not negative.
        """
