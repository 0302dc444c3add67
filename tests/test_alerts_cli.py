"""``opswatch notify test``: the seed's test notification through a real (local) endpoint."""

from __future__ import annotations

import base64
import json

import pytest

from alerts_http import ScriptedServer
from opswatch.cli import main

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()


@pytest.fixture(autouse=True)
def no_channels_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_WEBHOOK_URL", "OPSWATCH_ALERT_WEBHOOK_URL", "OPSWATCH_ALERT_WEBHOOK_SECRET", "OPSWATCH_SMTP_URL"):
        monkeypatch.delenv(name, raising=False)


def test_it_sends_the_seeds_test_notification_and_reports_the_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ScriptedServer() as slack:
        code = main(["notify", "test", "--url", slack.url, "--format", "json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["delivered"] is True and result["status"] == 200 and result["answer"] == "ok"
    assert result["url"].endswith("/…")  # the webhook path is a secret: never printed
    text = slack.requests[0].text
    assert "Payment Failure" in text and "Test Church" in text and "Test error - please ignore" in text


def test_it_uses_slack_webhook_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer() as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        assert main(["notify", "test"]) == 0
        assert len(slack.requests) == 1
    out = capsys.readouterr().out
    assert "delivered    yes" in out.splitlines()  # words for people, not Python's True
    assert "True" not in out and "False" not in out


def test_it_reports_a_refusal_and_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with ScriptedServer([(404, "no_service")]) as slack:
        code = main(["notify", "test", "--url", slack.url, "--format", "json"])
    assert code == 1
    result = json.loads(capsys.readouterr().out)
    assert result["delivered"] is False
    assert result["status"] == 404 and result["answer"] == "no_service" and result["permanent"] is True


def test_it_retries_text_only_on_invalid_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    with ScriptedServer([(400, "invalid_blocks"), (200, "ok")]) as slack:
        assert main(["notify", "test", "--url", slack.url, "--format", "json"]) == 0
        assert set(slack.requests[1].json) == {"text"}
    assert json.loads(capsys.readouterr().out)["text_only_retry"] is True


def test_it_tests_the_signed_webhook_channel(capsys: pytest.CaptureFixture[str]) -> None:
    with ScriptedServer([(202, "")]) as hook:
        code = main(["notify", "test", "--channel", "webhook", "--url", hook.url, "--secret", SECRET])
        assert code == 0
        assert hook.requests[0].headers["webhook-signature"].startswith("v1,")


def test_it_falls_back_to_the_webhook_when_no_slack_url_is_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer([(202, "")]) as hook:
        monkeypatch.setenv("OPSWATCH_ALERT_WEBHOOK_URL", hook.url)
        assert main(["notify", "test"]) == 0
        assert len(hook.requests) == 1 and "webhook-signature" not in hook.requests[0].headers
    out, err = capsys.readouterr()
    assert "channel      webhook" in out.splitlines() and "signed       no (no signing secret)" in out
    assert "sent unsigned" in err and "OPSWATCH_ALERT_WEBHOOK_SECRET" in err


def test_it_takes_a_secret_as_the_choice_of_the_webhook_and_says_nothing_about_signing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ScriptedServer([(202, "")]) as hook:
        assert main(["notify", "test", "--url", hook.url, "--secret", SECRET, "--format", "json"]) == 0
        assert hook.requests[0].headers["webhook-signature"].startswith("v1,")
    out, err = capsys.readouterr()
    assert json.loads(out)["channel"] == "webhook" and json.loads(out)["signed"] is True
    assert "unsigned" not in err


def test_it_explains_bad_input_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notify", "test"]) == 2
    assert capsys.readouterr().err.strip() == (
        "opswatch: no channel to test: pass --url, or set SLACK_WEBHOOK_URL, OPSWATCH_ALERT_WEBHOOK_URL or "
        "OPSWATCH_SMTP_URL"
    )
    assert main(["notify", "test", "--channel", "slack"]) == 2
    assert capsys.readouterr().err.strip() == "opswatch: no slack URL: pass --url or set SLACK_WEBHOOK_URL"
    assert main(["notify", "test", "--url", "ftp://x"]) == 2
    assert "--url" in capsys.readouterr().err
    assert (
        main(["notify", "test", "--channel", "webhook", "--url", "http://127.0.0.1:9/", "--secret", "x"]) == 2
    )
    assert "--secret" in capsys.readouterr().err


def test_it_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["notify", "test", "--help"])
    assert exited.value.code == 0
    assert "seed's test notification" in capsys.readouterr().out
    assert main(["notify"]) == 2
