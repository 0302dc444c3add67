"""``IssueService``: the one object the server, the API and the tests use to work with issues.

It owns no state of its own: each call runs in its own transaction on the state store's engine, with the
time taken from an injectable clock (tests drive lifecycles without sleeping).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Engine, and_, delete, insert, select

from ..state.base import Base
from ..state.issues import SCHEMA_VERSION, TABLES, IssueEvent, IssueHourlyCount
from ..state.notices import ISSUE_NOTICES
from ..state.schema import ensure_schema
from . import lifecycle, read
from ._sql import utc
from .notify import notice_row
from .upsert import IssueChange, record_events

Clock = Callable[[], datetime.datetime | float]

#: Longest ignore duration accepted (a year); "forever" is the ignore without a limit.
MAX_IGNORE: Final = datetime.timedelta(days=366)


@dataclasses.dataclass(frozen=True)
class IssueSettings:
    """What the issues subsystem can be told (taken from ``ServerSettings`` when it has these fields).

    ``auto_resolve_days`` 0 means never; ``notify_new`` and ``notify_regressed`` say which changes become
    messages; ``sweep_interval`` is how often the background worker auto-resolves and expires ignores.
    """

    auto_resolve_days: int = 0
    notify_new: bool = True
    notify_regressed: bool = True
    sweep_interval: float = 60.0
    retention_days: int = 30

    @classmethod
    def from_server_settings(cls, settings: Any) -> IssueSettings:
        """Read the fields a ``ServerSettings`` may carry; absent ones keep their defaults."""
        defaults = cls()
        return cls(
            auto_resolve_days=int(
                getattr(settings, "issue_auto_resolve_days", defaults.auto_resolve_days) or 0
            ),
            notify_new=bool(getattr(settings, "notify_new_issues", defaults.notify_new)),
            notify_regressed=bool(getattr(settings, "notify_regressed_issues", defaults.notify_regressed)),
            retention_days=int(getattr(settings, "retention_days", defaults.retention_days) or 30),
        )


def install_tables(engine: Engine) -> None:
    """Create the issues tables (or bring them to this version)."""
    Base.metadata.create_all(engine, tables=[*TABLES, ISSUE_NOTICES])
    ensure_schema(engine, "issues", SCHEMA_VERSION)


class IssueService:
    """Issues over one state store. Thread-safe: it holds only the engine and the clock."""

    def __init__(self, engine: Engine, now: Clock | None = None) -> None:
        self.engine = engine
        self._clock: Clock = now or (lambda: datetime.datetime.now(datetime.UTC))

    def now(self) -> datetime.datetime:
        """The service's current time, aware UTC."""
        return utc(self._clock())

    # -- writes ------------------------------------------------------------------------------------------

    def record(
        self, records: Sequence[Mapping[str, Any]], *, notify: Iterable[str] = ()
    ) -> list[IssueChange]:
        """Count a batch of stored records into issues (non-errors are skipped); returns the new and
        regressed issues, each reported once however many writers saw it.

        A change whose kind is in ``notify`` (``new``, ``regressed``) also gets a row in the notice
        outbox (``issue_notices``), in the same transaction: once the issue is committed, its message
        is too, and ``notify.IssueNotices`` sends it even if this process dies first."""
        wanted = frozenset(notify)
        now = self.now()
        with self.engine.begin() as conn:
            changes = record_events(conn, records, now)
            notices = [notice_row(change, now.timestamp()) for change in changes if change.kind in wanted]
            if notices:
                conn.execute(insert(ISSUE_NOTICES), notices)
            return changes

    def resolve(self, issue_id: int, actor: str) -> dict[str, Any]:
        """Resolve an issue (no change when it is resolved); returns it. Raises ``IssueNotFound``."""
        with self.engine.begin() as conn:
            lifecycle.resolve(conn, issue_id, actor, self.now())
        return self.get(issue_id)

    def reopen(self, issue_id: int, actor: str) -> dict[str, Any]:
        """Make a resolved or ignored issue unresolved; returns it. Raises ``IssueNotFound``."""
        with self.engine.begin() as conn:
            lifecycle.reopen(conn, issue_id, actor, self.now())
        return self.get(issue_id)

    def ignore(
        self,
        issue_id: int,
        actor: str,
        *,
        until: datetime.datetime | None = None,
        duration: datetime.timedelta | None = None,
        count: int | None = None,
    ) -> dict[str, Any]:
        """Ignore an issue until a time (``until`` or ``duration`` from now), until ``count`` more events,
        or forever. Raises ``ValueError`` for a bad condition and ``IssueNotFound``."""
        now = self.now()
        if until is not None and duration is not None:
            raise ValueError("ignore: give a time or a duration, not both")
        if duration is not None:
            if duration <= datetime.timedelta(0) or duration > MAX_IGNORE:
                raise ValueError("ignore duration: expected more than 0 and at most 366 days")
            until = now + duration
        with self.engine.begin() as conn:
            lifecycle.ignore(
                conn, issue_id, actor, now, until=None if until is None else utc(until), count=count
            )
        return self.get(issue_id)

    def sweep(self, settings: IssueSettings) -> dict[str, list[int]]:
        """One pass of the background work: auto-resolve (when on) and expire time-limited ignores."""
        now = self.now()
        with self.engine.begin() as conn:
            resolved = (
                lifecycle.auto_resolve(conn, now, settings.auto_resolve_days)
                if settings.auto_resolve_days
                else []
            )
            unignored = lifecycle.expire_ignores(conn, now)
        return {"auto_resolved": resolved, "unignored": unignored}

    def prune(self, retention_days: int) -> int:
        """Forget event mappings, hourly counts and sent notices older than the event retention; returns
        rows deleted."""
        cutoff = self.now() - datetime.timedelta(days=retention_days)
        with self.engine.begin() as conn:
            gone = conn.execute(delete(IssueEvent).where(IssueEvent.timestamp < cutoff)).rowcount
            gone += conn.execute(delete(IssueHourlyCount).where(IssueHourlyCount.hour < cutoff)).rowcount
            notices = ISSUE_NOTICES.c
            sent = and_(notices.notified_at.is_not(None), notices.created_at < cutoff.timestamp())
            gone += conn.execute(delete(ISSUE_NOTICES).where(sent)).rowcount
        return int(gone)

    # -- reads -------------------------------------------------------------------------------------------

    def list_issues(self, **filters: Any) -> read.Page:
        """Issues matching the filters (see ``read.list_issues``)."""
        with self.engine.connect() as conn:
            return read.list_issues(conn, self.now(), **filters)

    def get(self, issue_id: int) -> dict[str, Any]:
        """One issue whole (see ``read.get_issue``). Raises ``IssueNotFound``."""
        with self.engine.connect() as conn:
            return read.get_issue(conn, issue_id, self.now())

    def events(
        self, issue_id: int, *, limit: int = 50, before: tuple[datetime.datetime, str] | None = None
    ) -> list[dict[str, Any]]:
        """The issue's event ids and times, newest first; ``before`` is the (time, event id) of the last
        event of the previous page. Raises ``IssueNotFound``."""
        with self.engine.connect() as conn:
            return read.event_refs(conn, issue_id, limit=limit, before=before)

    def issue_for_event(self, project_id: int, event_id: str) -> int | None:
        """The issue an event was counted into, or None."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(IssueEvent.issue_id).where(
                    IssueEvent.project_id == project_id, IssueEvent.event_id == event_id
                )
            ).scalar_one_or_none()
        return None if found is None else int(found)
