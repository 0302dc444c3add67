"""Check-ins reach Sentry without the app's scope, as errors do: the real sentry-sdk, a local Sentry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sentry_sdk

import opswatch
from opswatch import cron_job
from sentry_server import FakeSentry


@pytest.fixture
def app_sentry(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSentry]:
    """The app initialized sentry-sdk itself and filled its scope with things that must not leave."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FakeSentry() as server:
        sentry_sdk.init(
            dsn=server.dsn,
            auto_session_tracking=False,
            send_client_reports=False,
            default_integrations=False,
            traces_sample_rate=1.0,
            environment="production",
            release="donations@2.1.0",
        )
        scope = sentry_sdk.get_current_scope()
        scope.set_context("payment", {"card": "4242 4242 4242 4242-context"})
        scope.set_tag("session_token", "tok-tag-secret")
        scope.add_attachment(bytes=b"attachment-secret", filename="dump.txt")
        scope.add_event_processor(lambda event, hint: {**event, "extra": {"leak": "processor-secret"}})
        opswatch.init(console=False, capture_stdlib=False, sentry_dsn=server.dsn, sentry_enabled=True)
        try:
            yield server
        finally:
            opswatch.shutdown()
            sentry_sdk.get_client().close()
            sentry_sdk.get_global_scope().set_client(None)


def test_it_sends_check_ins_without_the_apps_context_tags_attachments_or_trace(app_sentry: FakeSentry) -> None:
    with sentry_sdk.start_transaction(name="nightly"), cron_job("nightly-report", schedule="0 2 * * *"):
        pass
    opswatch.flush(5)
    begun, ended = app_sentry.wait_for(lambda s: len(s.items_of("check_in")) >= 2 and s.items_of("check_in"))
    assert (begun["status"], ended["status"]) == ("in_progress", "ok")
    assert begun["check_in_id"] == ended["check_in_id"]
    assert ended["environment"] == "production" and ended["release"] == "donations@2.1.0"
    for check_in in (begun, ended):
        assert "contexts" not in check_in  # no trace context, no app context
        assert "tags" not in check_in and "extra" not in check_in
    # The app's own transaction carries its scope, as it should; the check-ins' envelopes must not.
    ours = [e for e in app_sentry.envelopes if any(item.type == "check_in" for item in e.items)]
    assert [item.type for envelope in ours for item in envelope.items] == ["check_in", "check_in"]
    raw = b"".join(item.payload for envelope in ours for item in envelope.items)
    for secret in (b"4242 4242 4242 4242-context", b"tok-tag-secret", b"attachment-secret", b"processor-secret"):
        assert secret not in raw
