"""``opswatch notify test``: send the seed's test notification through a channel and report the answer.

The message is the seed's own test (a payment failure for "Test Church", "Test error - please ignore"),
sent once, synchronously, through the same channel code the notifier uses, with the same rules: one
text-only retry on ``invalid_blocks``, no redirects, a fixed timeout. Exit code 0 when delivered, 1 when
the endpoint refused or did not answer, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from . import CommandError
from ._output import print_json
from ._table import output_width, pairs


def register(subparsers: Any) -> None:
    """Add ``notify`` and ``notify test``."""
    parser = subparsers.add_parser("notify", help="check alert channels (Slack, webhook, email)")
    actions = parser.add_subparsers(dest="notify_command", metavar="ACTION")
    test = actions.add_parser(
        "test",
        help="send the seed's test notification and report the answer",
        description="Send the seed's test notification (a payment failure for 'Test Church') and report "
        "what the endpoint answered.",
    )
    test.add_argument(
        "--channel",
        choices=["slack", "webhook", "email"],
        help="which channel (default: email with an smtp(s):// --url; webhook with --secret; slack with "
        "--url or SLACK_WEBHOOK_URL; else webhook when OPSWATCH_ALERT_WEBHOOK_URL is set, else email "
        "when OPSWATCH_SMTP_URL is)",
    )
    test.add_argument(
        "--url",
        help="webhook URL (default: SLACK_WEBHOOK_URL, or OPSWATCH_ALERT_WEBHOOK_URL for webhook), or "
        "smtp(s):// URL for email (default: OPSWATCH_SMTP_URL)",
    )
    test.add_argument(
        "--to", action="append", help="recipient for --channel email, repeatable (default: OPSWATCH_EMAIL_TO)"
    )
    test.add_argument(
        "--secret",
        help="whsec_ signing secret for --channel webhook (default: OPSWATCH_ALERT_WEBHOOK_SECRET)",
    )
    test.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer (max 30)")
    test.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    test.set_defaults(handler=_test)
    parser.set_defaults(handler=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _shown(url: str) -> str:
    """The URL without its path: a Slack webhook's path is its secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path not in ("", "/") else url


def _test(args: argparse.Namespace) -> int:
    from ..alerts.channels import Channel, DeliveryError, EmailChannel, SlackChannel, WebhookChannel
    from ..alerts.limits import HTTP_MAX_TIMEOUT
    from ..alerts.templates import SlackNotifications
    from ..config import ConfigError, Settings

    if not 0 < args.timeout <= HTTP_MAX_TIMEOUT:
        raise CommandError(f"--timeout must be more than 0 and at most {HTTP_MAX_TIMEOUT:g} seconds")
    try:
        settings = Settings.load()
    except ConfigError as err:
        raise CommandError(str(err)) from None
    kind = args.channel or _pick_channel(args, settings)
    urls = {
        "slack": settings.slack_webhook_url,
        "webhook": settings.alert_webhook_url,
        "email": settings.smtp_url,
    }
    url = args.url or urls[kind]
    if not url:
        variable = _URL_VARIABLES[kind]
        raise CommandError(f"no {kind} URL: pass --url or set {variable}")
    secret = args.secret or settings.alert_webhook_secret
    try:
        channel: Channel
        if kind == "email":
            channel = EmailChannel(
                url,
                sender=settings.email_from,
                recipients=args.to or settings.email_to,
                ca_file=settings.smtp_ca_file,
                timeout=args.timeout,
                setting="--url",
                recipients_setting="--to" if args.to else "email_to",
            )
        elif kind == "webhook":
            channel = WebhookChannel(
                url, secret=secret, timeout=args.timeout, setting="--url", secret_setting="--secret"
            )
        else:
            channel = SlackChannel(url, timeout=args.timeout, setting="--url")
    except ConfigError as err:
        raise CommandError(f"{err.setting}: {err.problem}") from None

    alert = SlackNotifications.payment_failed(
        amount=100, church_name="Test Church", error="Test error - please ignore"
    )
    shown = channel.url if kind == "email" else _shown(url)  # the email channel's URL has no credentials
    result: dict[str, Any] = {"channel": kind, "url": shown, "delivered": False}
    if kind == "email":
        result["to"] = ", ".join(getattr(channel, "recipients", ()))
    if kind == "webhook":
        result["signed"] = bool(secret)
    started = time.perf_counter()
    try:
        try:
            answer = channel.deliver(alert)
        except DeliveryError as err:
            if not err.text_only:
                raise
            result["text_only_retry"] = True
            answer = channel.deliver(alert, text_only=True)
        result.update(delivered=True, status=answer.status, answer=answer.body)
    except DeliveryError as err:
        result.update(
            status=err.answer.status if err.answer else None,
            answer=err.answer.body if err.answer else None,
            error=err.reason,
            permanent=err.permanent,
        )
    finally:
        channel.close()
    if kind == "email" and "status" in result:
        result["smtp_reply"] = result.pop("status")
    result["seconds"] = round(time.perf_counter() - started, 3)
    _print(result, args.format)
    if kind == "webhook" and not secret:
        print(
            "opswatch: the webhook was sent unsigned (no --secret or OPSWATCH_ALERT_WEBHOOK_SECRET): "
            "its receiver cannot check that it came from opswatch",
            file=sys.stderr,
        )
    return 0 if result["delivered"] else 1


_URL_VARIABLES = {
    "slack": "SLACK_WEBHOOK_URL",
    "webhook": "OPSWATCH_ALERT_WEBHOOK_URL",
    "email": "OPSWATCH_SMTP_URL",
}


def _pick_channel(args: argparse.Namespace, settings: Any) -> str:
    """The channel when ``--channel`` is not given: what ``--help`` promises. An ``smtp(s)://`` ``--url``
    means email; ``--secret`` the webhook; ``--url`` alone, or ``SLACK_WEBHOOK_URL``, means Slack; else
    the webhook when ``OPSWATCH_ALERT_WEBHOOK_URL`` is set, else email when ``OPSWATCH_SMTP_URL`` is."""
    if args.url and args.url.startswith(("smtp://", "smtps://")):
        return "email"
    if args.secret:
        return "webhook"
    if args.url or settings.slack_webhook_url:
        return "slack"
    if settings.alert_webhook_url:
        return "webhook"
    if settings.smtp_url:
        return "email"
    raise CommandError(
        "no channel to test: pass --url, or set SLACK_WEBHOOK_URL, OPSWATCH_ALERT_WEBHOOK_URL or "
        "OPSWATCH_SMTP_URL"
    )


#: How each result reads for people (``--format json`` keeps the raw values).
_LABELS: dict[str, str] = {
    "channel": "channel",
    "url": "sent to",
    "to": "recipients",
    "delivered": "delivered",
    "signed": "signed",
    "text_only_retry": "retried as text",
    "status": "HTTP status",
    "smtp_reply": "SMTP reply",
    "answer": "answer",
    "error": "error",
    "permanent": "failure",
    "seconds": "took",
}


def _words(key: str, value: Any) -> str:
    if key == "permanent":
        return "permanent (the endpoint refused: fix the URL)" if value else "transient (would be retried)"
    if key == "signed":
        return "yes (Standard Webhooks signature)" if value else "no (no signing secret)"
    if key == "seconds":
        return f"{value:.3f} s"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value in (None, "") else str(value)


def _print(result: dict[str, Any], form: str) -> None:
    if form == "json":
        print_json(result, indent=None)
        return
    items = [(_LABELS.get(key, key), _words(key, value)) for key, value in result.items()]
    for line in pairs(items, width=output_width()):
        print(line)
    sys.stdout.flush()
