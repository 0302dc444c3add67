"""End to end: a real server with a rules file, the SDK logging a real error-rate spike, and a local
Slack stand-in that sees exactly one firing and one resolved message, none extra after a restart in the
middle of the incident. Short window, ``for`` and interval come from settings; deadlines are only for
waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import opswatch
from opswatch.server.testing import running_server
from slack_receiver import SlackReceiver

RULES = """
[[rules]]
name = "checkout-error-rate"
signal = "error_ratio"
where = "service = 'checkout'"
window = "3s"
critical = "> 0.5"
resolve = "< 0.2"
min_events = 5
for = "1s"
no_data = "keep_last"   # the restart leaves the window empty for a moment
template = "high_error_rate"
"""
SETTINGS = {
    "rules_interval": 1,
    "rules_ingest_delay": 0,
    "rules_group_wait": 0,
    "rules_group_interval": 0,
    "rules_defaults": False,
    # Only the rule speaks to Slack in this test.
    "notify_new_issues": False,
    "notify_regressed_issues": False,
}


def _until(condition: Callable[[], bool], act: Callable[[], None], deadline: float = 30.0) -> bool:
    """Call ``act`` until ``condition`` holds or the deadline passes."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        act()
    return condition()


def test_it_sends_one_firing_and_one_resolved_message_across_a_restart(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    with SlackReceiver() as slack:
        settings = {**SETTINGS, "rules_file": rules, "slack_webhook_url": slack.url}

        def traffic(level: str) -> Callable[[], None]:
            log = opswatch.get_logger("checkout")

            def send() -> None:
                for _ in range(5):
                    if level == "error":
                        log.error("card declined", operation="payment.charge")
                    else:
                        log.info("charged", operation="payment.charge")
                opswatch.flush(5)
                time.sleep(0.2)

            return send

        with running_server(tmp_path, **settings) as server:
            opswatch.init(
                dsn=server.dsn, console=False, service="checkout", spool_dir=str(tmp_path / "spool")
            )
            assert _until(lambda: len(slack.messages) >= 1, traffic("error")), "no firing message"
            [firing] = slack.texts()
            assert "High Error Rate" in firing and "checkout-error-rate" in firing
            opswatch.shutdown()
        # The server is down mid-incident; it comes back on the same data with the incident still firing.
        with running_server(tmp_path, **settings) as server:
            opswatch.init(
                dsn=server.dsn, console=False, service="checkout", spool_dir=str(tmp_path / "spool")
            )
            runtime = server.ctx.extras["rules"]
            assert _until(lambda: runtime.service.rounds >= 3, traffic("error"))
            assert len(slack.messages) == 1  # still firing: nothing new after the restart
            assert _until(lambda: len(slack.messages) >= 2, traffic("info")), "no resolved message"
            for _ in range(5):
                traffic("info")()
            opswatch.shutdown()
        texts = slack.texts()
        assert len(texts) == 2, texts
        assert "resolved" in texts[1].lower() and "Lasted" in texts[1]
