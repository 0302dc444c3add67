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
    parser = subparsers.add_parser("notify", help="check alert channels (Slack, webhook)")
    actions = parser.add_subparsers(dest="notify_command", metavar="ACTION")
    test = actions.add_parser(
        "test",
        help="send the seed's test notification and report the answer",
        description="Send the seed's test notification (a payment failure for 'Test Church') and report "
        "what the endpoint answered.",
    )
    test.add_argument(
        "--channel",
        choices=["slack", "webhook"],
        help="which channel (default: webhook with --secret; slack with --url or SLACK_WEBHOOK_URL; "
        "else webhook when OPSWATCH_ALERT_WEBHOOK_URL is set)",
    )
    test.add_argument(
        "--url", help="webhook URL (default: SLACK_WEBHOOK_URL, or OPSWATCH_ALERT_WEBHOOK_URL for webhook)"
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
    from ..alerts.channels import Channel, DeliveryError, SlackChannel, WebhookChannel
    from ..alerts.limits import HTTP_MAX_TIMEOUT
    from ..alerts.templates import SlackNotifications
    from ..config import ConfigError, Settings

    if not 0 < args.timeout <= HTTP_MAX_TIMEOUT:
        raise CommandError(f"--timeout must be more than 0 and at most {HTTP_MAX_TIMEOUT:g} seconds")
    try:
        settings = Settings.load()
    except ConfigError as err:
        raise CommandError(str(err)) from None
    kind = args.channel or _pick_channel(args, settings.slack_webhook_url, settings.alert_webhook_url)
    default_url = settings.slack_webhook_url if kind == "slack" else settings.alert_webhook_url
    url = args.url or default_url
    if not url:
        variable = "SLACK_WEBHOOK_URL" if kind == "slack" else "OPSWATCH_ALERT_WEBHOOK_URL"
        raise CommandError(f"no {kind} URL: pass --url or set {variable}")
    secret = args.secret or settings.alert_webhook_secret
    try:
        channel: Channel
        if kind == "webhook":
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
    result: dict[str, Any] = {"channel": kind, "url": _shown(url), "delivered": False}
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
    result["seconds"] = round(time.perf_counter() - started, 3)
    _print(result, args.format)
    if kind == "webhook" and not secret:
        print(
            "opswatch: the webhook was sent unsigned (no --secret or OPSWATCH_ALERT_WEBHOOK_SECRET): "
            "its receiver cannot check that it came from opswatch",
            file=sys.stderr,
        )
    return 0 if result["delivered"] else 1


def _pick_channel(args: argparse.Namespace, slack_url: str | None, webhook_url: str | None) -> str:
    """The channel when ``--channel`` is not given: what ``--help`` promises. ``--secret`` means the
    webhook; ``--url`` alone, or ``SLACK_WEBHOOK_URL``, means Slack; else the webhook when
    ``OPSWATCH_ALERT_WEBHOOK_URL`` is set."""
    if args.secret:
        return "webhook"
    if args.url or slack_url:
        return "slack"
    if webhook_url:
        return "webhook"
    raise CommandError(
        "no channel to test: pass --url, or set SLACK_WEBHOOK_URL or OPSWATCH_ALERT_WEBHOOK_URL"
    )


#: How each result reads for people (``--format json`` keeps the raw values).
_LABELS: dict[str, str] = {
    "channel": "channel",
    "url": "sent to",
    "delivered": "delivered",
    "signed": "signed",
    "text_only_retry": "retried as text",
    "status": "HTTP status",
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
