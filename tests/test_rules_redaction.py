"""Rule notifications carry only what the server stored, and the server stores redacted events: a label
taken from a field holding an email or a secret reaches Slack masked, never as sent."""

from __future__ import annotations

import datetime
from pathlib import Path

from opswatch.server.rules import rules_for
from opswatch.server.testing import running_server
from rules_cast import T0, request
from slack_receiver import SlackReceiver

RULES = """
[[rules]]
name = "errors-per-customer"
signal = "count"
where = "level = 'error'"
group_by = ["customer", "note"]
window = "1m"
critical = "> 2"
"""


def test_it_sends_labels_as_the_server_stored_them_redacted(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    now = T0 + 120
    fixed = datetime.datetime.fromtimestamp(now, datetime.UTC)
    settings = {"rules_file": path, "rules_ingest_delay": 0, "rules_group_wait": 0, "rules_defaults": False}
    with (
        SlackReceiver() as slack,
        running_server(
            tmp_path, now=lambda: fixed, slack_webhook_url=slack.url, notify_new_issues=False,
            rule_clock=False, **settings,  # the test runs the round: no background one races it
        ) as server,
    ):
        secret = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
        records = [
            request(T0 + 60 + i, level="error", customer="ana.lopez@example.org", note=f"key {secret}")
            for i in range(3)
        ]
        server.ctx.pipeline.ingest(server.project_id, records, "test")
        runtime = rules_for(server.ctx)
        runtime.service.run_once(now)
        runtime.dispatcher.drain(now)
        [text] = slack.wait_for(1)[0:1] and slack.texts()
        assert "errors-per-customer" in text
        assert "ana.lopez@example.org" not in text and secret not in text
        assert "example.org" in text  # masked, still telling which customer domain
