"""Issues over time: counting, resolving, regressing, ignoring, auto-resolving. A clock the test drives."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from opswatch.record import format_timestamp, serialize_exception
from opswatch.server.issues.lifecycle import IssueNotFound
from opswatch.server.issues.read import BadFilter
from opswatch.server.issues.service import IssueService, IssueSettings, install_tables
from opswatch.server.state.base import create_engine_for

START = datetime.datetime(2025, 11, 2, 9, 0, tzinfo=datetime.UTC)


class Clock:
    """The time the service sees; tests move it."""

    def __init__(self, at: datetime.datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime.datetime:
        return self.at

    def advance(self, **delta: float) -> datetime.datetime:
        self.at += datetime.timedelta(**delta)
        return self.at


class PaymentError(Exception):
    pass


def charge_card(donation_id: int) -> None:
    raise PaymentError(f"Payment failed for donation {donation_id}")


def sync_ledger() -> None:
    raise KeyError("ledger")


_ids = iter(range(1, 10**9))


def occurrence(at: datetime.datetime, fn: Any = charge_card, *args: Any, **fields: Any) -> dict[str, Any]:
    """An error record as ingest stores it, raised for real, dated ``at``."""
    try:
        fn(*(args or ((next(_ids),) if fn is charge_card else ())))
    except Exception as err:
        error = serialize_exception(err)
    record = {
        "event_id": f"{next(_ids):032x}",
        "timestamp": format_timestamp(at.timestamp()),
        "level": "error",
        "message": "payment failed",
        "logger": "donations",
        "operation": "payment.stripe.charge",
        "release": "1.0.0",
        "environment": "production",
        "service": "donations",
        "project_id": 1,
        "kind": "error",
        "error": error,
    }
    record.update(fields)
    return record


@pytest.fixture
def database_url(state_url: str) -> str:
    """A fresh state store on SQLite, and again on PostgreSQL (``state_url`` in ``conftest.py``)."""
    return state_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine_for(database_url)
    install_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issues(engine: Engine, clock: Clock) -> IssueService:
    return IssueService(engine, now=clock)


def only_issue(issues: IssueService) -> dict[str, Any]:
    page = issues.list_issues(status="all")
    assert page.total == 1
    return issues.get(page.items[0]["id"])


# -- counting ------------------------------------------------------------------------------------------------


def test_it_creates_an_issue_with_what_the_first_event_says(issues: IssueService, clock: Clock) -> None:
    changes = issues.record([occurrence(clock.at)])
    assert [c.kind for c in changes] == ["new"]
    issue = only_issue(issues)
    assert issue["title"] == "PaymentError: Payment failed for donation " + issue["title"].rsplit(" ", 1)[-1]
    assert issue["culprit"].endswith(" in charge_card")
    assert issue["status"] == "unresolved"
    assert issue["level"] == "error"
    assert issue["operation"] == "payment.stripe.charge"
    assert issue["count"] == 1
    assert issue["first_seen"] == issue["last_seen"] == "2025-11-02T09:00:00.000Z"
    assert issue["grouping"]["version"] >= 1 and issue["grouping"]["method"] == "stack"
    assert issue["latest_event"]["event_id"] == issue["latest_event_id"]
    assert [a["kind"] for a in issue["activity"]] == ["created"]


def test_it_counts_later_events_into_the_same_issue(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at)])
    later = occurrence(clock.advance(minutes=90), release="1.0.1", environment="staging", level="fatal")
    assert issues.record([later, occurrence(clock.at - datetime.timedelta(minutes=1))]) == []
    issue = only_issue(issues)
    assert issue["count"] == 3
    assert issue["last_seen"] == "2025-11-02T10:30:00.000Z"
    assert issue["latest_event_id"] == later["event_id"]
    assert issue["level"] == "fatal"  # the highest level seen
    assert issue["first_release"] == "1.0.0" and issue["last_release"] == "1.0.1"
    assert {r["value"]: r["count"] for r in issue["releases"]} == {"1.0.0": 2, "1.0.1": 1}
    assert {e["value"] for e in issue["environments"]} == {"production", "staging"}


def test_it_counts_an_event_id_once(issues: IssueService, clock: Clock) -> None:
    record = occurrence(clock.at)
    issues.record([record, record])
    issues.record([record])
    assert only_issue(issues)["count"] == 1


def test_it_keeps_hourly_counts_for_sparklines(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at - datetime.timedelta(hours=2)) for _ in range(3)])
    issues.record([occurrence(clock.at) for _ in range(2)])
    issue = only_issue(issues)
    assert issue["counts_24h"][-3:] == [3, 0, 2]
    assert sum(issue["counts_24h"]) == 5
    assert issue["counts_30d"][-1] == 5
    listed = issues.list_issues()
    assert listed.items[0]["counts_24h"][-1] == 2


def test_it_maps_each_event_to_its_issue(issues: IssueService, clock: Clock) -> None:
    payment = occurrence(clock.at)
    ledger = occurrence(clock.at, sync_ledger)
    issues.record([payment, ledger])
    payment_issue = issues.issue_for_event(1, payment["event_id"])
    ledger_issue = issues.issue_for_event(1, ledger["event_id"])
    assert payment_issue is not None and ledger_issue is not None and payment_issue != ledger_issue
    assert [e["event_id"] for e in issues.events(payment_issue)] == [payment["event_id"]]


def test_it_skips_records_that_are_not_errors(issues: IssueService, clock: Clock) -> None:
    info = occurrence(clock.at, level="info")
    check_in = occurrence(clock.at, kind="check_in")
    assert issues.record([info, check_in]) == []
    assert issues.list_issues(status="all").total == 0


def test_it_dates_events_from_a_fast_clock_at_their_arrival(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at + datetime.timedelta(days=3))])
    assert only_issue(issues)["last_seen"] == "2025-11-02T09:00:00.000Z"


# -- resolve and regress -------------------------------------------------------------------------------------


def test_it_regresses_a_resolved_issue_when_it_happens_again(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at)])
    issue_id = issues.list_issues().items[0]["id"]
    resolved = issues.resolve(issue_id, actor="ann")
    assert resolved["status"] == "resolved"
    clock.advance(hours=1)
    changes = issues.record([occurrence(clock.at), occurrence(clock.at)])
    assert [(c.kind, c.times_regressed) for c in changes] == [("regressed", 1)]
    issue = issues.get(issue_id)
    assert issue["status"] == "regressed"
    assert issue["times_regressed"] == 1
    assert [(a["kind"], a["actor"], a["from"], a["to"]) for a in issue["activity"]] == [
        ("created", "system:ingest", None, "unresolved"),
        ("resolved", "ann", "unresolved", "resolved"),
        ("regressed", "system:ingest", "resolved", "regressed"),
    ]
    assert issue["activity"][1]["at"] == "2025-11-02T09:00:00.000Z"
    assert issue["activity"][2]["at"] == "2025-11-02T10:00:00.000Z"
    assert issues.record([occurrence(clock.at)]) == []  # still regressed: no second message


def test_it_does_not_regress_on_an_event_from_before_the_resolution(
    issues: IssueService, clock: Clock
) -> None:
    issues.record([occurrence(clock.at)])
    issue_id = issues.list_issues().items[0]["id"]
    clock.advance(hours=1)
    issues.resolve(issue_id, actor="ann")
    late = occurrence(clock.at - datetime.timedelta(minutes=30))  # delivered late from a spool
    assert issues.record([late]) == []
    assert issues.get(issue_id)["status"] == "resolved"
    assert issues.get(issue_id)["count"] == 2


def test_it_lists_regressed_issues_among_the_unresolved(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at)])
    issue_id = issues.list_issues().items[0]["id"]
    issues.resolve(issue_id, actor="ann")
    assert issues.list_issues().total == 0
    issues.record([occurrence(clock.advance(minutes=5))])
    assert [i["status"] for i in issues.list_issues().items] == ["regressed"]
    assert issues.list_issues(status="regressed").total == 1


def test_it_resolves_twice_as_one_change(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at)])
    issue_id = issues.list_issues().items[0]["id"]
    issues.resolve(issue_id, actor="ann")
    issues.resolve(issue_id, actor="bob")
    assert [a["kind"] for a in issues.get(issue_id)["activity"]] == ["created", "resolved"]


def test_it_reopens_a_resolved_issue(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at)])
    issue_id = issues.list_issues().items[0]["id"]
    issues.resolve(issue_id, actor="ann")
    reopened = issues.reopen(issue_id, actor="bob")
    assert reopened["status"] == "unresolved"
    assert reopened["activity"][-1]["kind"] == "reopened" and reopened["activity"][-1]["actor"] == "bob"
    assert issues.record([occurrence(clock.advance(minutes=1))]) == []  # unresolved: no regression


def test_it_raises_for_an_unknown_issue(issues: IssueService) -> None:
    with pytest.raises(IssueNotFound):
        issues.resolve(999, actor="ann")
    with pytest.raises(IssueNotFound):
        issues.get(999)


# -- ignore ----------------------------------------------------------------------------------------------------


def test_it_keeps_an_issue_ignored_forever(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at)])
    issue_id = issues.list_issues().items[0]["id"]
    issues.ignore(issue_id, actor="ann")
    clock.advance(days=400)
    assert issues.record([occurrence(clock.at) for _ in range(50)]) == []
    issues.sweep(IssueSettings(auto_resolve_days=1))
    issue = issues.get(issue_id)
    assert issue["status"] == "ignored"
    assert issue["count"] == 51


def test_it_ignores_until_a_time(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at)])
    issue_id = issues.list_issues().items[0]["id"]
    ignored = issues.ignore(issue_id, actor="ann", duration=datetime.timedelta(hours=2))
    assert ignored["ignore_until"] == "2025-11-02T11:00:00.000Z"
    issues.record([occurrence(clock.advance(hours=1))])
    assert issues.get(issue_id)["status"] == "ignored"
    issues.record([occurrence(clock.advance(hours=1, seconds=1))])
    issue = issues.get(issue_id)
    assert issue["status"] == "unresolved"
    assert issue["activity"][-1]["actor"] == "system:ignore-expired"


def test_it_ends_a_timed_ignore_without_events(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at)])
    issue_id = issues.list_issues().items[0]["id"]
    issues.ignore(issue_id, actor="ann", until=clock.at + datetime.timedelta(minutes=30))
    assert issues.sweep(IssueSettings())["unignored"] == []
    clock.advance(minutes=30)
    assert issues.sweep(IssueSettings())["unignored"] == [issue_id]
    assert issues.get(issue_id)["status"] == "unresolved"


def test_it_ignores_until_n_more_events(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at)])
    issue_id = issues.list_issues().items[0]["id"]
    issues.ignore(issue_id, actor="ann", count=3)
    issues.record([occurrence(clock.at), occurrence(clock.at)])
    assert issues.get(issue_id)["status"] == "ignored"
    issues.record([occurrence(clock.at)])
    issue = issues.get(issue_id)
    assert issue["status"] == "unresolved"
    assert issue["activity"][-1]["actor"] == "system:ignore-count-reached"


def test_it_refuses_ignore_conditions_that_make_no_sense(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at)])
    issue_id = issues.list_issues().items[0]["id"]
    with pytest.raises(ValueError, match="past"):
        issues.ignore(issue_id, actor="ann", until=clock.at - datetime.timedelta(minutes=1))
    with pytest.raises(ValueError, match="at least 1"):
        issues.ignore(issue_id, actor="ann", count=0)
    assert issues.get(issue_id)["status"] == "unresolved"


# -- auto-resolve --------------------------------------------------------------------------------------------


def test_it_auto_resolves_after_n_quiet_days(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at)])
    issues.record([occurrence(clock.at, sync_ledger)])
    payment_id, ledger_id = (i["id"] for i in issues.list_issues(sort="first_seen").items[::-1])
    settings = IssueSettings(auto_resolve_days=7)
    clock.advance(days=3)
    issues.record([occurrence(clock.at, sync_ledger)])
    clock.advance(days=4, seconds=1)
    assert issues.sweep(settings)["auto_resolved"] == [payment_id]
    issue = issues.get(payment_id)
    assert issue["status"] == "resolved"
    assert issue["activity"][-1]["actor"] == "system:auto-resolve"
    assert issues.get(ledger_id)["status"] == "unresolved"
    assert issues.sweep(IssueSettings(auto_resolve_days=0))["auto_resolved"] == []
    assert [c.kind for c in issues.record([occurrence(clock.advance(minutes=1))])] == ["regressed"]


# -- concurrency ---------------------------------------------------------------------------------------------


def test_it_creates_one_issue_when_writers_race(database_url: str, clock: Clock) -> None:
    engines = [create_engine_for(database_url) for _ in range(4)]
    install_tables(engines[0])
    services = [IssueService(e, now=clock) for e in engines]
    barrier = threading.Barrier(len(services))
    results: list[list[str]] = []
    lock = threading.Lock()

    def write(service: IssueService) -> None:
        batch = [occurrence(clock.at) for _ in range(5)]
        barrier.wait()
        kinds = [c.kind for c in service.record(batch)]
        with lock:
            results.append(kinds)

    threads = [threading.Thread(target=write, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(k for kinds in results for k in kinds) == ["new"]
        issue = only_issue(services[0])
        assert issue["count"] == 20
    finally:
        for e in engines:
            e.dispose()


def test_it_reports_one_regression_when_writers_race(database_url: str, clock: Clock) -> None:
    engines = [create_engine_for(database_url) for _ in range(4)]
    install_tables(engines[0])
    services = [IssueService(e, now=clock) for e in engines]
    services[0].record([occurrence(clock.at)])
    issue_id = services[0].list_issues().items[0]["id"]
    services[0].resolve(issue_id, actor="ann")
    clock.advance(minutes=10)
    barrier = threading.Barrier(len(services))
    kinds: list[str] = []
    lock = threading.Lock()

    def write(service: IssueService) -> None:
        batch = [occurrence(clock.at)]
        barrier.wait()
        found = [c.kind for c in service.record(batch)]
        with lock:
            kinds.extend(found)

    threads = [threading.Thread(target=write, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert kinds == ["regressed"]
        assert [a["kind"] for a in services[0].get(issue_id)["activity"]].count("regressed") == 1
    finally:
        for e in engines:
            e.dispose()


# -- listing ---------------------------------------------------------------------------------------------------


def test_it_filters_and_sorts_the_list(issues: IssueService, clock: Clock) -> None:
    issues.record([occurrence(clock.at) for _ in range(3)])
    issues.record([occurrence(clock.advance(minutes=5), sync_ledger, level="fatal", operation="ledger.sync")])
    by_count = issues.list_issues(sort="freq")
    assert [i["count"] for i in by_count.items] == [3, 1]
    assert [i["type"] for i in issues.list_issues(level="fatal").items] == ["KeyError"]
    assert issues.list_issues(query="ledger").items[0]["operation"] == "ledger.sync"
    assert issues.list_issues(query="operation:payment.stripe.charge").total == 1
    assert issues.list_issues(query="release:1.0.0").total == 2
    assert issues.list_issues(query="release:9.9").total == 0
    assert issues.list_issues(query="PAYMENTERROR").total == 1
    first_page = issues.list_issues(limit=1)
    assert first_page.total == 2 and first_page.next_offset == 1
    assert issues.list_issues(limit=1, offset=1).next_offset is None


@pytest.mark.parametrize(
    "filters", [{"status": "open-ish"}, {"level": "loud"}, {"sort": "random"}, {"limit": 0}, {"offset": -1}]
)
def test_it_names_the_bad_filter(issues: IssueService, filters: dict[str, Any]) -> None:
    with pytest.raises(BadFilter, match=next(iter(filters))):
        issues.list_issues(**filters)


def test_it_forgets_event_mappings_past_retention(issues: IssueService, clock: Clock) -> None:
    old = occurrence(clock.at)
    issues.record([old])
    issue_id = issues.list_issues().items[0]["id"]
    clock.advance(days=31)
    new = occurrence(clock.at)
    issues.record([new])
    assert issues.prune(retention_days=30) == 2  # one mapping, one hourly count
    assert [e["event_id"] for e in issues.events(issue_id)] == [new["event_id"]]
    assert issues.get(issue_id)["count"] == 2  # the issue's own count is history, kept


# -- grouping versions -----------------------------------------------------------------------------------


def test_it_keeps_history_when_the_grouping_version_changes(
    issues: IssueService, engine: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An issue made by an older algorithm keeps its events when the current one hashes them anew."""
    from sqlalchemy import update

    from opswatch.server.issues import grouping
    from opswatch.server.state.issues import IssueHash

    issues.record([occurrence(clock.at)])
    issue_id = issues.list_issues().items[0]["id"]
    with engine.begin() as conn:  # make the stored hash look like one an older version computed
        conn.execute(update(IssueHash).values(hash="0" * 32, grouping_version=0))

    def version_zero(record: Any) -> grouping.Grouping:
        return grouping.Grouping("0" * 32, 0, "legacy", (), "", "", None, "")

    monkeypatch.setitem(grouping.PREVIOUS_VERSIONS, 0, version_zero)
    assert issues.record([occurrence(clock.advance(minutes=1))]) == []
    issue = issues.get(issue_id)
    assert issue["count"] == 2
    assert sorted(h["grouping_version"] for h in issue["hashes"]) == [0, grouping.GROUPING_VERSION]
    assert issues.list_issues(status="all").total == 1
