"""The seed's notification templates, and the same templates built from a log record.

``SlackNotifications.payment_failed(amount=100, church_name="First Baptist", error="card_declined")``
returns an ``Alert``; ``send_slack_notification`` sends it. The routing rules name templates by the same
names (``payment_failed``, ``database_error`` ...); ``RECORD_TEMPLATES`` builds each from an error record,
reading the fields the seed logs (``amount``, ``churchName``/``church_name``, ``durationMs`` ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from ..record import Record
from .message import Alert, Severity, facts, fingerprint


def _money(amount: float | int | str | None, currency: str) -> str | None:
    if amount is None or amount == "":
        return None
    try:
        value = float(amount)
    except (TypeError, ValueError):
        return str(amount)
    if currency.upper() == "USD":
        return f"${value:,.2f}"
    return f"{value:,.2f} {currency.upper()}"


def _link_label(url: str | None) -> str:
    return "View in Sentry" if url and "sentry" in url.lower() else "View"


class SlackNotifications:
    """Pre-built alerts for the seed's scenarios. Every method returns an ``Alert``; none sends anything.

    Each takes ``sentry_url`` (or ``url``) for the "View" link, ``fingerprint`` to override how repeats
    are recognised, and ``**extra`` facts shown as additional fields.
    """

    @staticmethod
    def payment_failed(
        *,
        amount: float | int | str | None = None,
        church_name: str | None = None,
        error: str | None = None,
        currency: str = "USD",
        sentry_url: str | None = None,
        url: str | None = None,
        fingerprint: str = "",
        **extra: Any,
    ) -> Alert:
        """🔥 Payment Failure: "A donation payment has failed and requires immediate attention"."""
        return _made(
            "payment_failed",
            sentry_url or url,
            fingerprint,
            (error,),
            title="Payment Failure",
            summary="A donation payment has failed and requires immediate attention.",
            facts=facts(
                [
                    ("Amount", _money(amount, currency)),
                    ("Church", church_name),
                    ("Error", error),
                    *extra.items(),
                ]
            ),
            error=error,
        )

    @staticmethod
    def slow_query(
        *,
        query: str,
        duration: float | int,
        endpoint: str | None = None,
        threshold: float | int | None = None,
        sentry_url: str | None = None,
        url: str | None = None,
        fingerprint: str = "",
        **extra: Any,
    ) -> Alert:
        """⚠️ Slow Query: a query or endpoint took ``duration`` milliseconds."""
        return _made(
            "slow_query",
            sentry_url or url,
            fingerprint,
            (query, endpoint),
            title="Slow Query",
            summary="A query is running far slower than its threshold.",
            severity="warning",
            facts=facts(
                [
                    ("Query", query),
                    ("Duration", f"{float(duration):,.0f} ms"),
                    ("Threshold", None if threshold is None else f"{float(threshold):,.0f} ms"),
                    ("Endpoint", endpoint),
                    *extra.items(),
                ]
            ),
        )

    @staticmethod
    def high_error_rate(
        *,
        error_rate: float | int,
        time_window: str,
        sentry_url: str | None = None,
        url: str | None = None,
        fingerprint: str = "",
        **extra: Any,
    ) -> Alert:
        """⚠️ High Error Rate: ``error_rate`` percent of requests failed over ``time_window``."""
        return _made(
            "high_error_rate",
            sentry_url or url,
            fingerprint,
            (time_window,),
            title="High Error Rate",
            summary="The error rate is above its threshold.",
            severity="warning",
            facts=facts([("Error rate", f"{float(error_rate):g}%"), ("Window", time_window), *extra.items()]),
        )

    @staticmethod
    def cron_job_failed(
        *,
        job_name: str,
        error: str | None = None,
        sentry_url: str | None = None,
        url: str | None = None,
        fingerprint: str = "",
        **extra: Any,
    ) -> Alert:
        """🔥 Cron Job Failure: the scheduled job ``job_name`` failed."""
        return _made(
            "cron_job_failed",
            sentry_url or url,
            fingerprint,
            (job_name, error),
            title="Cron Job Failure",
            summary="A scheduled job has failed.",
            facts=facts([("Job", job_name), ("Error", error), *extra.items()]),
            error=error,
        )

    @staticmethod
    def campaign_failed(
        *,
        campaign_name: str,
        recipient_count: int | None = None,
        error: str | None = None,
        sentry_url: str | None = None,
        url: str | None = None,
        fingerprint: str = "",
        **extra: Any,
    ) -> Alert:
        """🔥 Campaign Failure: sending the email campaign ``campaign_name`` failed."""
        return _made(
            "campaign_failed",
            sentry_url or url,
            fingerprint,
            (campaign_name, error),
            title="Campaign Failure",
            summary="An email campaign failed to send.",
            facts=facts(
                [
                    ("Campaign", campaign_name),
                    ("Recipients", recipient_count),
                    ("Error", error),
                    *extra.items(),
                ]
            ),
            error=error,
        )

    @staticmethod
    def database_error(
        *,
        error: str | None = None,
        operation: str | None = None,
        sentry_url: str | None = None,
        url: str | None = None,
        fingerprint: str = "",
        **extra: Any,
    ) -> Alert:
        """🔥 Database Error: ``operation`` failed against the database."""
        return _made(
            "database_error",
            sentry_url or url,
            fingerprint,
            (operation, error),
            title="Database Error",
            summary="A database operation has failed.",
            facts=facts([("Operation", operation), ("Error", error), *extra.items()]),
            error=error,
        )

    @staticmethod
    def fatal_error(
        *,
        message: str,
        error: str | None = None,
        operation: str | None = None,
        sentry_url: str | None = None,
        url: str | None = None,
        fingerprint: str = "",
        **extra: Any,
    ) -> Alert:
        """🔥 Fatal Error: the application logged ``fatal``."""
        return _made(
            "fatal_error",
            sentry_url or url,
            fingerprint,
            (operation, message, error),
            title="Fatal Error",
            summary=message,
            facts=facts([("Operation", operation), ("Error", error), *extra.items()]),
            error=error,
        )

    @staticmethod
    def alert(
        *,
        title: str,
        message: str = "",
        severity: Severity = "critical",
        fields: Mapping[str, Any] | None = None,
        error: str | None = None,
        sentry_url: str | None = None,
        url: str | None = None,
        fingerprint: str = "",
    ) -> Alert:
        """Any other alert: a title, a message, fields as facts, an error and a link."""
        return _made(
            "alert",
            sentry_url or url,
            fingerprint,
            (title, message, error),
            title=title,
            summary=message,
            severity=severity,
            facts=facts((fields or {}).items()),
            error=error,
        )


def _made(template: str, link: str | None, given: str, key: tuple[object, ...], **fields: Any) -> Alert:
    """An ``Alert`` from ``template`` with its "View" link, and a fingerprint unless one was ``given``."""
    return Alert(
        url=link,
        url_label=_link_label(link),
        template=template,
        fingerprint=given or fingerprint(template, *key),
        **fields,
    )


# -- building the templates from a record ----------------------------------------------------------------


def field(record: Mapping[str, Any], *names: str) -> Any:
    """The first of ``names`` present in ``record`` (snake_case names also try their camelCase form)."""
    for name in names:
        if name in record and record[name] not in (None, ""):
            return record[name]
        head, *rest = name.split("_")
        camel = head + "".join(part.title() for part in rest)
        if rest and camel in record and record[camel] not in (None, ""):
            return record[camel]
    return None


def error_text(record: Mapping[str, Any]) -> str | None:
    """``Type: message`` of the record's exception, a string ``error`` field, or None."""
    error = record.get("error")
    if isinstance(error, Mapping):
        kind = str(error.get("type") or "Error").rsplit(".", 1)[-1]
        message = error.get("message")
        return f"{kind}: {message}" if message else kind
    if error not in (None, ""):
        return str(error)
    return None


def record_fingerprint(template: str, record: Mapping[str, Any]) -> str:
    """Repeats of one problem share this: template, operation, error type and normalized error text."""
    error = record.get("error")
    kind = error.get("type") if isinstance(error, Mapping) else None
    detail = error.get("message") if isinstance(error, Mapping) else error
    return fingerprint(template, record.get("operation"), kind, detail or record.get("message"))


def record_context(record: Mapping[str, Any]) -> tuple[str, ...]:
    """Context items for an alert made from a record: service and environment, logger, event id."""
    items = []
    where = " · ".join(str(v) for v in (record.get("service"), record.get("environment")) if v)
    if where:
        items.append(where)
    if record.get("logger"):
        items.append(f"logger {record['logger']}")
    if record.get("event_id"):
        items.append(f"event {record['event_id']}")
    return tuple(items)


RecordTemplate = Callable[[Record, "str | None"], Alert]


def _payment(record: Record, link: str | None) -> Alert:
    return SlackNotifications.payment_failed(
        amount=field(record, "amount"),
        church_name=field(record, "church_name", "church"),
        error=error_text(record) or record.get("message"),
        currency=str(field(record, "currency") or "USD"),
        url=link,
        Operation=record.get("operation"),
        Message=record.get("message"),
    )


def _slow_query(record: Record, link: str | None) -> Alert:
    operation = str(record.get("operation") or "")
    parts = operation.split(".", 3)
    query = parts[3] if len(parts) == 4 and parts[0] == "performance" else operation or "unknown"
    duration = field(record, "duration_ms", "duration") or 0
    try:
        duration_value = float(duration)
    except (TypeError, ValueError):
        duration_value = 0.0
    threshold = field(record, "threshold_ms", "threshold")
    try:
        threshold_value = None if threshold is None else float(threshold)
    except (TypeError, ValueError):
        threshold_value = None
    return SlackNotifications.slow_query(
        query=query,
        duration=duration_value,
        threshold=threshold_value,
        endpoint=field(record, "endpoint", "path", "route"),
        url=link,
        Operation=operation or None,
    )


def _high_error_rate(record: Record, link: str | None) -> Alert:
    rate = field(record, "error_rate", "rate") or 0
    try:
        rate_value = float(rate)
    except (TypeError, ValueError):
        rate_value = 0.0
    return SlackNotifications.high_error_rate(
        error_rate=rate_value,
        time_window=str(field(record, "time_window", "window") or "recently"),
        url=link,
        Operation=record.get("operation"),
    )


def _cron(record: Record, link: str | None) -> Alert:
    operation = str(record.get("operation") or "")
    job = field(record, "monitor_slug", "job_name", "slug")
    if job is None:
        job = operation.split(".")[1] if operation.count(".") >= 2 else operation or "unknown"
    return SlackNotifications.cron_job_failed(
        job_name=str(job),
        error=error_text(record) or record.get("message"),
        url=link,
        Operation=operation or None,
    )


def _campaign(record: Record, link: str | None) -> Alert:
    count = field(record, "recipient_count", "recipients")
    return SlackNotifications.campaign_failed(
        campaign_name=str(field(record, "campaign_name", "campaign", "campaign_id") or "unknown"),
        recipient_count=count if isinstance(count, int) else None,
        error=error_text(record) or record.get("message"),
        url=link,
    )


def _database(record: Record, link: str | None) -> Alert:
    return SlackNotifications.database_error(
        error=error_text(record) or record.get("message"),
        operation=record.get("operation"),
        url=link,
        Message=record.get("message"),
    )


def _fatal(record: Record, link: str | None) -> Alert:
    return SlackNotifications.fatal_error(
        message=str(record.get("message") or "fatal error"),
        error=error_text(record),
        operation=record.get("operation"),
        url=link,
    )


def _generic(record: Record, link: str | None) -> Alert:
    level = str(record.get("level") or "error")
    return SlackNotifications.alert(
        title=str(record.get("message") or "Error"),
        severity="critical" if level == "fatal" else "error",
        fields={"Operation": record.get("operation"), "Level": level},
        error=error_text(record),
        url=link,
    )


#: Template name -> builder from a record. Routes name their template by these keys.
RECORD_TEMPLATES: dict[str, RecordTemplate] = {
    "payment_failed": _payment,
    "slow_query": _slow_query,
    "high_error_rate": _high_error_rate,
    "cron_job_failed": _cron,
    "campaign_failed": _campaign,
    "database_error": _database,
    "fatal_error": _fatal,
    "alert": _generic,
}


def alert_from_record(template: str, record: Record, link: str | None = None) -> Alert:
    """Build the alert ``template`` from a (redacted) record, with context, a link and a fingerprint."""
    alert = RECORD_TEMPLATES[template](record, link or _record_link(record))
    return dataclasses.replace(
        alert,
        context=record_context(record),
        fingerprint=record_fingerprint(template, record),
        data={k: record.get(k) for k in _DATA_KEYS if record.get(k) is not None},
    )


_DATA_KEYS = ("event_id", "timestamp", "operation", "logger", "level", "service", "environment", "release")


def _record_link(record: Record) -> str | None:
    link = field(record, "sentry_url", "url")
    return link if isinstance(link, str) and link.startswith(("http://", "https://")) else None
