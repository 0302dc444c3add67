"""The notifier against a real HTTP server on 127.0.0.1 that answers as Slack would (scripted)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import pytest

from alerts_http import HANG, ScriptedServer
from opswatch.alerts import (
    Alert,
    Notifier,
    RetryPolicy,
    SlackChannel,
    SlackNotifications,
    WebhookChannel,
)
from opswatch.alerts.dedupe import Deduper
from opswatch.alerts.limits import DEFAULT_RETRY_AFTER, MAX_DEDUPE_KEYS, MAX_RETRY_AFTER
from opswatch.alerts.testing import ManualClock
from opswatch.testing import capture_logs

FAST_RETRY = RetryPolicy(max_attempts=3, initial=0.01, maximum=0.05)


def until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``condition`` (the worker's progress) for up to ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def payment(error: str = "card_declined") -> Alert:
    return SlackNotifications.payment_failed(amount=100, church_name="First Baptist", error=error)


@pytest.fixture
def notifiers() -> Iterator[list[Notifier]]:
    made: list[Notifier] = []
    yield made
    for notifier in made:
        notifier.close(1.0)


def slack_notifier(notifiers: list[Notifier], url: str, **options: object) -> Notifier:
    options.setdefault("retry", FAST_RETRY)
    timeout = options.pop("timeout", 2.0)
    notifier = Notifier([SlackChannel(url, timeout=timeout)], **options)  # type: ignore[arg-type]
    notifiers.append(notifier)
    return notifier


def test_it_delivers_an_alert_when_slack_answers_ok(notifiers: list[Notifier]) -> None:
    with ScriptedServer([(200, "ok")]) as server:
        notifier = slack_notifier(notifiers, server.url)
        delivery = notifier.send(payment())
        assert delivery.wait(5)
        assert delivery.state == "delivered"
        assert len(server.requests) == 1
        assert server.requests[0].json["blocks"][0]["text"]["text"] == "🔥 Payment Failure"
        status = notifier.channels["slack"].status
        assert status.last_success is not None and status.last_duration is not None


def test_it_retries_503_and_delivers_exactly_once(notifiers: list[Notifier]) -> None:
    with ScriptedServer([(503, "unavailable"), (503, "unavailable"), (200, "ok")]) as server:
        notifier = slack_notifier(notifiers, server.url)
        delivery = notifier.send(payment())
        assert delivery.wait(5)
        assert delivery.state == "delivered"
        assert notifier.flush(30)
        assert len(server.requests) == 3
        assert notifier.stats()["sent"] == 1
        assert notifier.stats()["retries"] == 2


def test_it_retries_connection_errors(notifiers: list[Notifier]) -> None:
    with ScriptedServer() as server:
        url = server.url
    # the server is gone: connection refused on every attempt
    notifier = slack_notifier(notifiers, url)
    delivery = notifier.send(payment())
    assert delivery.wait(5)
    assert delivery.state == "failed"
    assert "gave up after 3 attempts" in (delivery.error or "")
    assert notifier.channels["slack"].status.errors == 3
    assert not notifier.channels["slack"].status.failed  # transient: the channel stays usable


def test_it_gives_up_on_persistent_5xx_after_the_last_attempt(notifiers: list[Notifier]) -> None:
    with ScriptedServer([(500, "boom")]) as server:
        notifier = slack_notifier(notifiers, server.url)
        delivery = notifier.send(payment())
        assert delivery.wait(5)
        assert delivery.state == "failed"
        assert len(server.requests) == FAST_RETRY.max_attempts
        assert notifier.stats()["failed"] == 1


@pytest.mark.slow
def test_it_waits_for_retry_after_on_429_and_delivers_once(notifiers: list[Notifier]) -> None:
    with ScriptedServer([(429, "rate_limited", {"Retry-After": "2"}), (200, "ok")]) as server:
        notifier = slack_notifier(notifiers, server.url)
        delivery = notifier.send(payment())
        assert delivery.wait(10)
        assert delivery.state == "delivered"
        assert len(server.requests) == 2
        assert server.requests[1].at - server.requests[0].at >= 2.0
        assert notifier.stats()["rate_limited"] == 1


def test_it_never_drops_a_rate_limited_message(notifiers: list[Notifier]) -> None:
    clock = ManualClock()
    limited = (429, "rate_limited", {"Retry-After": "60"})
    script = [limited] * 8 + [(200, "ok")]
    with ScriptedServer(script, clock=clock.monotonic) as server:
        notifier = slack_notifier(notifiers, server.url, clock=clock)
        delivery = notifier.send(payment())
        for attempt in range(1, 9):
            assert until(lambda n=attempt: notifier.stats()["rate_limited"] == n)  # the 429 was seen
            clock.advance(60)
        assert delivery.wait(5)
        assert delivery.state == "delivered"
        assert len(server.requests) == 9  # more than max_attempts: waiting for a rate limit is not failing
        times = [r.clock_at or 0.0 for r in server.requests]
        assert all(b - a >= 60 for a, b in itertools.pairwise(times))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, "no_service"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
        (403, "action_prohibited"),
        (400, "invalid_payload"),
    ],
)
def test_it_stops_at_a_permanent_answer_and_marks_the_channel_failed(
    notifiers: list[Notifier], status: int, body: str
) -> None:
    with ScriptedServer([(status, body)]) as server, capture_logs() as logs:
        notifier = slack_notifier(notifiers, server.url)
        first = notifier.send(payment())
        assert first.wait(5)
        second = notifier.send(payment("insufficient_funds"))
        assert second.wait(5)
        assert notifier.flush(30)
        assert len(server.requests) == 1  # one attempt, and nothing more to a broken channel
        assert first.state == "failed" and body in (first.error or "")
        assert second.state == "failed"
        channel = notifier.channels["slack"].status
        assert channel.failed
        assert channel.last_error == f"HTTP {status} {body}"
    reports = [r for r in logs if r.get("operation") == "alerts.channel.failed"]
    assert len(reports) == 1
    assert reports[0]["last_error"] == f"HTTP {status} {body}"


def test_it_retries_invalid_blocks_once_as_text_only(notifiers: list[Notifier]) -> None:
    with ScriptedServer([(400, "invalid_blocks"), (200, "ok")]) as server:
        notifier = slack_notifier(notifiers, server.url, burst=3)
        delivery = notifier.send(payment())
        assert delivery.wait(5)
        assert delivery.state == "delivered"
        assert len(server.requests) == 2
        assert "blocks" in server.requests[0].json
        assert set(server.requests[1].json) == {"text"}
        assert "Payment Failure" in server.requests[1].text
        assert not notifier.channels["slack"].status.failed


def test_it_fails_the_message_but_not_the_channel_when_text_only_is_refused_too(
    notifiers: list[Notifier],
) -> None:
    with ScriptedServer([(400, "invalid_blocks"), (400, "invalid_blocks"), (200, "ok")]) as server:
        notifier = slack_notifier(notifiers, server.url)
        first = notifier.send(payment())
        assert first.wait(5)
        assert first.state == "failed"
        assert len(server.requests) == 2
        second = notifier.send(payment("other"))
        assert second.wait(5)
        assert second.state == "delivered"


def test_it_does_not_follow_redirects(notifiers: list[Notifier]) -> None:
    with ScriptedServer() as target:
        with ScriptedServer([(302, "", {"Location": target.url})]) as server:
            notifier = slack_notifier(notifiers, server.url)
            delivery = notifier.send(payment())
            assert delivery.wait(5)
            assert delivery.state == "failed"
            assert "not followed" in (delivery.error or "")
        assert target.requests == []


def test_it_costs_the_caller_nothing_when_the_webhook_never_answers(notifiers: list[Notifier]) -> None:
    with ScriptedServer([HANG]) as server:
        notifier = slack_notifier(notifiers, server.url, queue_size=10, timeout=0.5)
        deliveries = [notifier.send(payment(f"error {i}")) for i in range(1_000)]
        stats = notifier.stats()
        assert stats["queued"] <= 10  # bounded memory, whatever the endpoint does
        dropped = [d for d in deliveries if d.state == "dropped"]
        assert len(dropped) >= 1_000 - 10 - 1  # at most the queue and the one in flight are kept
        assert stats["dropped"] == len(dropped)
        assert all(d.state in ("queued", "dropped") for d in deliveries)
        assert server.wait_for(1)
        notifier.close(0.2)


def test_it_counts_200_identical_errors_in_10_seconds_and_reports_the_count(
    notifiers: list[Notifier],
) -> None:
    clock = ManualClock()
    with ScriptedServer(clock=clock.monotonic) as server:
        notifier = slack_notifier(notifiers, server.url, clock=clock)
        for _ in range(200):
            notifier.send(payment())
            clock.advance(0.05)
        assert notifier.flush(30)
        assert len(server.requests) == 1  # the rest were counted, not sent
        stats = notifier.stats()
        assert stats["occurrences"] == 200
        assert stats["suppressed"] == 199
        clock.advance(600)  # the repeat interval ends: the count is announced
        assert server.wait_for(2)
        assert notifier.flush(30)
        assert len(server.requests) == 2
        assert "199 more since" in server.requests[1].text


def test_it_says_n_more_since_in_the_next_message_after_the_interval(notifiers: list[Notifier]) -> None:
    clock = ManualClock()
    with ScriptedServer() as server:
        notifier = slack_notifier(notifiers, server.url, clock=clock, repeat_interval=60)
        for _ in range(5):
            notifier.send(payment())
        assert notifier.flush(30)
        clock.advance(61)
        delivery = notifier.send(payment())  # arrives as the interval ends, before any reminder
        assert delivery.wait(5)
        assert notifier.flush(30)
        assert [r.text.count("4 more since") for r in server.requests] == [0, 1]


def test_it_paces_bursts_and_folds_them_counting_every_alert(notifiers: list[Notifier]) -> None:
    clock = ManualClock()
    with ScriptedServer(clock=clock.monotonic) as server:
        channel = WebhookChannel(server.url, timeout=2.0)
        notifier = Notifier([channel], clock=clock, retry=FAST_RETRY, pace=1.0, burst=3)
        start = clock.monotonic()
        notifiers.append(notifier)
        for i in range(20):  # distinct alerts, all at once
            notifier.send(SlackNotifications.database_error(error=f"deadlock in table_{chr(97 + i)}"))
        assert notifier.flush(30)
        for i in range(30):  # a steady storm: 10 per second for 3 seconds
            name = f"job-{chr(97 + i % 26)}{chr(97 + i // 26)}"
            notifier.send(SlackNotifications.cron_job_failed(job_name=name))
            clock.advance(0.1)
            time.sleep(0.005)  # let the worker keep up with the manual clock
        clock.advance(2)
        assert notifier.flush(30)
        messages = [r.json["data"] for r in server.requests]
        assert sum(m["occurrences"] for m in messages) == 50  # nothing folded goes uncounted
        assert len(messages) < 10
        assert any(m["folded"] > 1 for m in messages)
        # the pace holds: at most the burst plus one message per second of (manual) time
        elapsed = clock.monotonic() - start
        assert len(messages) <= 3 + elapsed


def test_it_sends_at_most_one_message_per_second_per_webhook(notifiers: list[Notifier]) -> None:
    clock = ManualClock()
    with ScriptedServer() as server:
        notifier = slack_notifier(notifiers, server.url, clock=clock, burst=1)
        notifier.send(payment("a"))
        assert server.wait_for(1)
        notifier.send(payment("b"))
        clock.advance(0.5)
        assert not server.wait_for(2, timeout=0.2)  # half a second later: still waiting for its turn
        clock.advance(0.5)
        assert server.wait_for(2)
        assert notifier.flush(30)


def test_it_folds_what_piles_up_behind_a_rate_limit_into_one_message(notifiers: list[Notifier]) -> None:
    clock = ManualClock()
    script = [(429, "rate_limited", {"Retry-After": "30"}), (200, "ok")]
    with ScriptedServer(script, clock=clock.monotonic) as server:
        notifier = slack_notifier(notifiers, server.url, clock=clock)
        notifier.send(payment("first"))
        assert server.wait_for(1)
        for i in range(100):
            name = f"job-{chr(97 + i % 26)}{chr(97 + i // 26)}"
            notifier.send(SlackNotifications.cron_job_failed(job_name=name, error="boom"))
        assert notifier.flush(0.2) is False  # waiting for Retry-After
        assert notifier.stats()["channels"]["slack"]["pending"] <= 1 + 20  # bounded: folded while waiting
        clock.advance(31)
        assert notifier.flush(30)
        later = [r.json["blocks"][0]["text"]["text"] for r in server.requests[2:]]
        assert len(later) <= 3
        counted = [int(title.split()[1]) if title.endswith(" alerts") else 1 for title in later]
        assert sum(counted) == 100


def test_it_sends_what_is_pending_when_closed(notifiers: list[Notifier]) -> None:
    clock = ManualClock()
    with ScriptedServer() as server:
        notifier = Notifier([SlackChannel(server.url)], clock=clock, burst=1)
        notifier.send(payment("a"))
        assert notifier.flush(30)
        for error in ("b", "c", "d"):
            notifier.send(payment(error))
        for _ in range(3):
            notifier.send(payment("a"))  # repeats: counted
        notifier.close(5)  # no pacing at shutdown, repeat counts included
        texts = [r.text for r in server.requests]
        assert len(texts) == 2
        assert texts[1].startswith("🔥 4 alerts")
        assert "Occurrences: 6" in texts[1]


def test_it_drops_what_it_cannot_send_before_the_close_deadline(notifiers: list[Notifier]) -> None:
    clock = ManualClock()
    with ScriptedServer([(429, "rate_limited", {"Retry-After": "900"})]) as server:
        notifier = Notifier([SlackChannel(server.url)], clock=clock)
        delivery = notifier.send(payment())
        assert server.wait_for(1)
        notifier.close(1.0)
        assert delivery.wait(2)
        assert delivery.state == "dropped"
        assert notifier.stats()["dropped"] == 1


def test_it_refuses_sends_after_close(notifiers: list[Notifier]) -> None:
    with ScriptedServer() as server:
        notifier = slack_notifier(notifiers, server.url)
        notifier.close(1)
        delivery = notifier.send(payment())
        assert delivery.state == "dropped"
        assert server.requests == []


def test_it_fans_out_to_every_channel_and_reports_each(notifiers: list[Notifier]) -> None:
    with ScriptedServer() as ok, ScriptedServer([(404, "no_service")]) as gone:
        notifier = Notifier({"ops": SlackChannel(ok.url), "old": SlackChannel(gone.url)}, retry=FAST_RETRY)
        notifiers.append(notifier)
        delivery = notifier.send(payment())
        assert delivery.wait(5)
        assert delivery.state == "partial"
        assert delivery.results == {"ops": "delivered", "old": "failed"}
        only = notifier.send(payment("x"), channels=["ops"])
        assert only.wait(5) and only.state == "delivered"
        with pytest.raises(ValueError, match="unknown channel"):
            notifier.send(payment(), channels=["nope"])


@pytest.mark.parametrize(("header", "wait"), [("100000", MAX_RETRY_AFTER), (None, DEFAULT_RETRY_AFTER)])
def test_it_caps_retry_after_and_has_a_default_without_it(
    notifiers: list[Notifier], header: str | None, wait: float
) -> None:
    clock = ManualClock()
    limited = (429, "rate_limited", {"Retry-After": header} if header else {})
    with ScriptedServer([limited, (200, "ok")], clock=clock.monotonic) as server:
        notifier = slack_notifier(notifiers, server.url, clock=clock)
        delivery = notifier.send(payment())
        assert until(lambda: notifier.stats()["rate_limited"] == 1)
        clock.advance(wait - 1)
        assert not server.wait_for(2, timeout=0.1)
        clock.advance(1)
        assert delivery.wait(5) and delivery.state == "delivered"


def test_it_keeps_at_most_max_keys_repeat_counters_and_still_announces_evicted_counts() -> None:
    dedupe = Deduper(interval=600, max_keys=MAX_DEDUPE_KEYS)
    alert = payment()
    for i in range(MAX_DEDUPE_KEYS):
        assert dedupe.offer(f"k{i}", alert, None, now=0.0, wall=0.0) is alert
    assert dedupe.offer("k0", alert, None, now=1.0, wall=1.0) is None  # counted; k0 is now the newest
    assert len(dedupe) == MAX_DEDUPE_KEYS
    dedupe.offer("one-more", alert, None, now=2.0, wall=2.0)  # evicts k1 (no count), not k0
    assert len(dedupe) == MAX_DEDUPE_KEYS
    for i in range(2, 2 + MAX_DEDUPE_KEYS - 1):  # push everything else, k0 included, out
        dedupe.offer(f"new{i}", alert, None, now=3.0, wall=3.0)
    reminders = dedupe.due(now=3.0, wall=3.0)
    assert [(r.key, r.alert.more) for r in reminders] == [("k0", 1)]
