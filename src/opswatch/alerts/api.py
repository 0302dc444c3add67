"""``send_slack_notification``: the seed's call, in Python, returning at once.

The alert is redacted with the runtime's redactor (templates carry what callers passed in, and nothing
unredacted leaves the process), then queued on the notifier of the active alert sink. When alerting is
not active (for example in development) but ``SLACK_WEBHOOK_URL`` is set, a send-only alert sink is added
to the runtime, so explicit sends work anywhere, share one pace per webhook with automatic alerts, and
are drained by ``opswatch.flush()`` and at exit.
"""

from __future__ import annotations

import threading
import weakref

from .._runtime import STATE, Runtime
from ._report import say
from .channels import SlackChannel
from .delivery import Notifier
from .jobs import Delivery
from .message import Alert
from .sink import AlertSink

_lock = threading.Lock()
_warned: weakref.WeakSet[Runtime] = weakref.WeakSet()  # runtimes that said "no webhook" once already


def _slack_sink(runtime: Runtime) -> AlertSink | None:
    for sink in runtime.sinks:
        if isinstance(sink, AlertSink) and "slack" in sink.notifier.channels:
            return sink
    url = runtime.settings.slack_webhook_url
    if not url:
        return None
    with _lock:
        for sink in runtime.sinks:  # another thread may have added it meanwhile
            if isinstance(sink, AlertSink) and "slack" in sink.notifier.channels:
                return sink
        sink = AlertSink(Notifier([SlackChannel(url, name="slack", setting="slack_webhook_url")]), None)
        runtime.add_sink(sink)
        return sink


def send_slack_notification(message: Alert | str, wait: bool = False, timeout: float = 10.0) -> Delivery:
    """Send ``message`` (an ``Alert``, e.g. from ``SlackNotifications``, or plain text) to Slack.

    Returns a ``Delivery`` at once; with ``wait=True`` it first waits up to ``timeout`` seconds for the
    outcome (``delivery.state``: delivered, suppressed, failed, dropped ...). Uses ``SLACK_WEBHOOK_URL``
    (``slack_webhook_url``); without one the delivery is ``skipped`` and a warning is logged once.
    Never raises.
    """
    alert = (
        message if isinstance(message, Alert) else Alert(title=str(message), severity="info", template="text")
    )
    try:
        runtime = STATE.get()
        if runtime.redacting:
            alert = alert.map_text(runtime.redactor.redact_text)
        sink = _slack_sink(runtime)
        if sink is None:
            if runtime not in _warned:
                _warned.add(runtime)
                say(
                    "warn",
                    "Slack notification not sent: no webhook configured (set SLACK_WEBHOOK_URL)",
                    operation="alerts.unconfigured",
                )
            return Delivery(alert, ())
        delivery = sink.notifier.send(alert, channels=("slack",), route="send_slack_notification")
        if wait:
            delivery.wait(timeout)
        return delivery
    except Exception as err:  # monitoring never raises into the application
        delivery = Delivery(alert, ("slack",))
        delivery.finish("failed", f"{type(err).__name__}: {err}")
        return delivery
