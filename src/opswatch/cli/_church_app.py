"""The simulated church-management app that ``opswatch demo`` runs: the seed's app, in miniature.

It uses only the public SDK (``opswatch.get_logger``, ``metrics``, ``track_*``, ``cron_job``), so what
the dashboard shows is exactly what a real app sends through ``OPSWATCH_DSN``:

* donations every second or so: a request context, ``track_performance("donations.create")`` around a
  ``track_query`` (now and then a slow one) and a ``track_external_call`` to the card processor, then
  ``metrics.donation.completed`` and the seed's success line; a few cards are declined
  (``CardDeclinedError``, one issue however many times it happens);
* giving reports every few seconds, whose query sometimes times out (``DatabaseTimeoutError``, a
  second issue);
* campaign, member and AI metrics (``metrics.email.campaign_sent`` ...);
* the cron job ``church-heartbeat`` (``every 10 seconds``) that fails now and then, and
  ``sync-member-directory`` (``every 30 seconds``), whose worker stops after its first run, so the
  server marks it missed about half a minute in;
* with a ``Scenario`` (``_demo_alerts``), an error-rate spike (the card processor unavailable for most
  charges) and a quiet spell with no donation at all, for the demo's alert rules to catch.

The first of each happens at ``start()``, so a dashboard opened right away already has an issue and
monitors. Every wait is on the stop event: ``stop()`` returns within a moment.
"""

from __future__ import annotations

import collections
import itertools
import random
import threading
import uuid
from collections.abc import Callable
from typing import Any, Final

import opswatch

from ._demo_alerts import Scenario

#: The churches that use the app.
CHURCHES: Final = ("grace-community", "st-marks", "riverside-fellowship", "hope-chapel", "new-life")
CAMPAIGNS: Final = (("camp_building", "Building Fund"), ("camp_missions", "Missions Trip"), (None, None))
DONORS: Final = (
    "jane.miller@example.com",
    "sam.okafor@example.org",
    "li.wei@example.net",
    "rosa.diaz@example.com",
)
#: Seconds between runs of the heartbeat job; one run in ``HEARTBEAT_FAILS`` fails.
HEARTBEAT_EVERY: Final = 10.0
HEARTBEAT_FAILS: Final = 4


class CardDeclinedError(Exception):
    """The card processor declined the charge (``decline_code`` says why)."""

    decline_code = "generic_decline"


class ProcessorUnavailableError(ConnectionError):
    """The card processor did not answer (the demo's error spike)."""


class DatabaseTimeoutError(Exception):
    """The database cancelled a statement that ran too long."""


class SyncServiceError(ConnectionError):
    """The directory sync service did not answer."""


class ChurchApp:
    """The simulated app: ``start()`` runs the opening moves and the worker threads, ``stop()`` ends them.

    ``seed`` makes the random choices repeatable; ``scenario`` adds the spike and the quiet spell.
    ``counts`` says what happened so far.
    """

    def __init__(self, seed: int | None = None, scenario: Scenario | None = None) -> None:
        self.scenario = scenario
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ids = itertools.count(1001)
        self.counts: collections.Counter[str] = collections.Counter()
        self.log = opswatch.get_logger("church_app", service_area="giving")
        self._heartbeat = opswatch.cron_job(
            "church-heartbeat", schedule="every 10 seconds", checkin_margin=0.25, max_runtime=1
        )
        self._directory_sync = opswatch.cron_job(
            "sync-member-directory", schedule="every 30 seconds", checkin_margin=0.1, max_runtime=1
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Do one of everything now (one decline and one timeout among them), then start the workers."""
        self.donate(decline=False)
        self.donate(decline=True)
        self.giving_report(fail=True)
        self.campaign_activity()
        self.run_heartbeat(fail=False)
        self.sync_directory()
        self.log.warn(
            "Directory sync worker stopped; no more runs will be scheduled",
            operation="workers.directory_sync.stopped",
        )
        for name, work, low, high in (
            ("donations", self.donate, 0.3, 1.2),
            ("reports", self.giving_report, 3.0, 6.0),
            ("campaigns", self.campaign_activity, 4.0, 8.0),
            ("heartbeat", self.run_heartbeat, HEARTBEAT_EVERY, HEARTBEAT_EVERY),
        ):
            thread = threading.Thread(
                target=self._every, args=(work, low, high), name=f"church-app-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers and wait for them (at most ``timeout`` seconds each)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _every(self, work: Callable[[], Any], low: float, high: float) -> None:
        while not self._stop.wait(self._uniform(low, high)):
            try:
                work()
            except Exception as err:  # a bug in the simulation must not end the demo
                self.log.error("The simulated app failed", {"operation": "demo.internal"}, err)

    def _uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self._rng.uniform(low, high)

    def _chance(self, probability: float) -> bool:
        with self._lock:
            return self._rng.random() < probability

    def _choice(self, options: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._rng.choice(options)

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def _wait_ms(self, low: float, high: float) -> None:
        """Spend some milliseconds, as a database or an API would (cut short by ``stop``)."""
        self._stop.wait(self._uniform(low, high) / 1000)

    # -- the app's work --------------------------------------------------------------------------------

    def _database(self, *, slow: float = 0.06, critical: float = 0.01) -> None:
        if self._chance(critical):
            self._count("slow_queries")
            self._wait_ms(2050, 2300)
        elif self._chance(slow):
            self._count("slow_queries")
            self._wait_ms(520, 900)
        else:
            self._wait_ms(4, 45)

    def donate(self, decline: bool | None = None) -> None:
        """One donation request: validate, store, charge, record the metric; declines are logged."""
        phase = self.scenario.phase() if self.scenario is not None else "normal"
        if phase == "quiet":
            return  # nobody gives during the quiet spell
        church = self._choice(CHURCHES)
        donation_id = f"don_{next(self._ids)}"
        amount = self._choice((10, 20, 25, 40, 50, 75, 100, 150, 250, 500))
        method = self._choice(("card", "card", "card", "card", "ach", "cash"))
        campaign_id, campaign_name = self._choice(CAMPAIGNS)
        declined = self._chance(0.08) if decline is None else decline
        down = phase == "spike" and self._chance(0.6)
        if declined or down:
            method = "card"
        request = {"request_id": uuid.uuid4().hex[:16], "church_id": church}
        with opswatch.context(**request):
            try:
                opswatch.track_performance(
                    "donations.create",
                    lambda: self._create_donation(
                        donation_id, amount, method, church, campaign_id, campaign_name, declined, down
                    ),
                    route="/api/donations/create",
                )
            except CardDeclinedError as err:
                self._count("declined")
                self.log.error(
                    "Payment failed",
                    {
                        "operation": "payment.stripe.charge",
                        "amount": amount,
                        "donationId": donation_id,
                        "declineCode": err.decline_code,
                    },
                    err,
                )
            except ProcessorUnavailableError as err:
                self._count("processor_down")
                self.log.error(
                    "Payment failed",
                    {"operation": "payment.stripe.charge", "amount": amount, "donationId": donation_id},
                    err,
                )

    def _create_donation(
        self,
        donation_id: str,
        amount: int,
        method: str,
        church: str,
        campaign_id: str | None,
        campaign_name: str | None,
        declined: bool,
        down: bool = False,
    ) -> None:
        opswatch.track_query("donation.create", self._database, table="donations")
        if method == "card":
            opswatch.track_external_call(
                "stripe.payment_intent.create", lambda: self._charge(amount, declined, down), amount=amount
            )
        donor = self._choice(DONORS)
        opswatch.metrics.donation.completed(
            donation_id=donation_id,
            amount=amount,
            currency="USD",
            method=method,
            recurring=self._chance(0.3),
            campaign_id=campaign_id,
            church_id=church,
            donor_id=f"donor_{DONORS.index(donor) + 1001}",
        )
        self.log.info(
            "Donation created successfully",
            operation="donations.create.success",
            donation_id=donation_id,
            amount=amount,
            campaign_name=campaign_name,
            donor_email=donor,  # masked by redaction before it leaves the process
        )
        self._count("donations")

    def _charge(self, amount: int, declined: bool, down: bool = False) -> None:
        self._wait_ms(60, 220)
        if down:  # two retries, each logged, then the charge fails
            for attempt in (1, 2):
                self.log.error(
                    "Card processor call failed, retrying",
                    operation="payment.stripe.retry",
                    attempt=attempt,
                    amount=amount,
                )
            raise ProcessorUnavailableError("card processor did not answer within 5 s")
        if declined:
            error = CardDeclinedError("Your card was declined.")
            error.decline_code = self._choice(("insufficient_funds", "generic_decline", "expired_card"))
            raise error

    def giving_report(self, fail: bool | None = None) -> None:
        """The monthly giving summary: a big query that sometimes times out."""
        church = self._choice(CHURCHES)
        failing = self._chance(0.12) if fail is None else fail
        with opswatch.context(request_id=uuid.uuid4().hex[:16], church_id=church):
            try:
                with opswatch.track_performance("reports.giving_summary", route="/api/reports/giving"):
                    opswatch.track_query("donations.findMany", lambda: self._report_query(failing))
                self._count("reports")
            except DatabaseTimeoutError:
                self._count("report_failures")
                self.log.exception("Giving report failed", operation="reports.giving_summary")

    def _report_query(self, failing: bool) -> None:
        if failing:
            self._wait_ms(300, 400)
            raise DatabaseTimeoutError("canceling statement due to statement timeout (donations.findMany)")
        self._database(slow=0.25, critical=0.0)

    def campaign_activity(self) -> None:
        """A newsletter goes out, members use the app, an AI summary is written."""
        church = self._choice(CHURCHES)
        recipients = self._choice((120, 150, 340, 800))
        failures = self._choice((0, 1, 2, 5))
        opswatch.metrics.email.campaign_sent(
            campaign_id=f"email_{next(self._ids)}",
            campaign_name=self._choice(("Weekly Newsletter", "Easter Services", "Volunteer Call")),
            recipient_count=recipients,
            success_count=recipients - failures,
            failure_count=failures,
            church_id=church,
        )
        opswatch.metrics.member.activity(
            member_id=f"mem_{next(self._ids)}",
            action=self._choice(("viewed_reports", "updated_profile", "registered_event")),
            church_id=church,
            duration=round(self._uniform(10, 300)),
        )
        opswatch.metrics.ai.report_generated(
            report_type="donation_summary",
            tokens_used=round(self._uniform(800, 2400)),
            cost_usd=round(self._uniform(0.001, 0.006), 4),
            church_id=church,
        )
        self._count("campaigns")

    def run_heartbeat(self, fail: bool | None = None) -> None:
        """The ``church-heartbeat`` cron job; one run in ``HEARTBEAT_FAILS`` cannot reach the sync service."""
        failing = self._chance(1 / HEARTBEAT_FAILS) if fail is None else fail
        try:
            self._heartbeat.run(self._heartbeat_work, failing)
            self._count("heartbeat_ok")
        except SyncServiceError:
            self._count("heartbeat_failed")  # the job wrapper logged it and reported the failed run

    def _heartbeat_work(self, failing: bool) -> None:
        self._wait_ms(20, 120)
        if failing:
            raise SyncServiceError("sync service at sync.internal:7000 did not answer within 5 s")

    def sync_directory(self) -> None:
        """The ``sync-member-directory`` job: runs once, then its worker is gone."""
        self._directory_sync.run(lambda: self._wait_ms(30, 80))

    def summary(self) -> str:
        """One line about what happened so far."""
        with self._lock:
            c = dict(self.counts)
        return (
            f"app: {c.get('donations', 0)} donations, {c.get('declined', 0)} declined, "
            f"{c.get('slow_queries', 0)} slow queries, {c.get('report_failures', 0)} report timeouts, "
            f"heartbeat {c.get('heartbeat_ok', 0)} ok / {c.get('heartbeat_failed', 0)} failed"
            + self._phase_note()
        )

    def _phase_note(self) -> str:
        phase = self.scenario.phase() if self.scenario is not None else "normal"
        notes = {"spike": " (the card processor is failing)", "quiet": " (nobody is giving)"}
        return notes.get(phase, "")
