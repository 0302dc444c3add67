"""Projects and their ingest keys (the ``KEY`` in a DSN), and the default project made on first start.

A project groups the events of one application; every ingest request names a project in its URL and
carries a key that must belong to it. Keys are random 32-hex strings (the shape Sentry SDKs expect in a
DSN's user part). ``KeyCache`` answers "which project owns this key" from memory on the ingest hot path
and asks the database only for keys it has not seen (unknown keys are remembered briefly too, so a
client with a wrong key cannot turn every request into a query).
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
import threading
import time
from collections.abc import Callable

from sqlalchemy import Boolean, DateTime, Engine, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .base import Base
from .schema import ensure_schema

#: Version of this module's tables; raise it and add an upgrade step when they change.
SCHEMA_VERSION = 1

DEFAULT_PROJECT_NAME = "default"


class Project(Base):
    """A project: one application's events."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class IngestKey(Base):
    """An ingest key of a project (the public key of a DSN)."""

    __tablename__ = "ingest_keys"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """An ingest key as the API and CLI show it."""

    key: str
    project_id: int
    label: str
    active: bool
    created_at: str


@dataclasses.dataclass(frozen=True)
class ProjectInfo:
    """A project with its keys, as the API and CLI show it."""

    id: int
    name: str
    created_at: str
    keys: tuple[KeyInfo, ...]


class ProjectExists(ValueError):
    """A project with that name exists already."""


class UnknownProject(LookupError):
    """No project has that id."""


def new_key() -> str:
    """A new random ingest key: 32 lower-case hex characters."""
    return secrets.token_hex(16)


def install(engine: Engine, now: Callable[[], datetime.datetime] | None = None) -> ProjectInfo:
    """Create or upgrade the tables and make sure the default project exists; return it.

    The default project is the first project (id 1 on a fresh store); it gets one key when created.
    """
    Base.metadata.create_all(engine, tables=[Project.__table__, IngestKey.__table__])  # type: ignore[list-item]
    ensure_schema(engine, "projects", SCHEMA_VERSION)
    clock = now or _utcnow
    with Session(engine) as session, session.begin():
        first = session.scalars(select(Project).order_by(Project.id).limit(1)).first()
        if first is None:
            first = Project(name=DEFAULT_PROJECT_NAME, created_at=clock())
            session.add(first)
            session.flush()
            session.add(IngestKey(key=new_key(), project_id=first.id, label="default", created_at=clock()))
        project_id = first.id
    return get_project(engine, project_id)


def get_project(engine: Engine, project_id: int) -> ProjectInfo:
    """The project with ``project_id`` and its keys; raises ``UnknownProject``."""
    with Session(engine) as session:
        project = session.get(Project, project_id)
        if project is None:
            raise UnknownProject(f"no project {project_id}")
        return _info(session, project)


def list_projects(engine: Engine) -> list[ProjectInfo]:
    """Every project with its keys, by id."""
    with Session(engine) as session:
        return [_info(session, p) for p in session.scalars(select(Project).order_by(Project.id))]


def create_project(
    engine: Engine, name: str, now: Callable[[], datetime.datetime] | None = None
) -> ProjectInfo:
    """Create a project named ``name`` with one key; raises ``ProjectExists`` or ``ValueError``."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValueError("a project name has 1 to 200 characters")
    clock = now or _utcnow
    with Session(engine) as session, session.begin():
        if session.scalars(select(Project).where(Project.name == name)).first() is not None:
            raise ProjectExists(f"a project named {name!r} exists already")
        project = Project(name=name, created_at=clock())
        session.add(project)
        session.flush()
        session.add(IngestKey(key=new_key(), project_id=project.id, label="default", created_at=clock()))
        project_id = project.id
    return get_project(engine, project_id)


def create_key(
    engine: Engine, project_id: int, label: str = "", now: Callable[[], datetime.datetime] | None = None
) -> KeyInfo:
    """Add an ingest key to a project; raises ``UnknownProject``."""
    clock = now or _utcnow
    with Session(engine) as session, session.begin():
        if session.get(Project, project_id) is None:
            raise UnknownProject(f"no project {project_id}")
        row = IngestKey(key=new_key(), project_id=project_id, label=label[:200], created_at=clock())
        session.add(row)
        session.flush()
        return _key_info(row)


def set_key_active(engine: Engine, key: str, active: bool) -> bool:
    """Enable or revoke a key; False when there is no such key. Caches see it within their TTL."""
    with Session(engine) as session, session.begin():
        row = session.get(IngestKey, key)
        if row is None:
            return False
        row.active = active
        return True


class KeyCache:
    """Resolves ingest keys to project ids from memory; thread-safe.

    Known keys are kept for ``ttl`` seconds (so a revoked key stops working within that time), unknown
    keys for ``negative_ttl`` seconds. ``forget()`` drops everything (called when keys change here).
    """

    def __init__(
        self, engine: Engine, ttl: float = 60.0, negative_ttl: float = 5.0, max_entries: int = 10_000
    ) -> None:
        self._engine = engine
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._entries: dict[str, tuple[int | None, float]] = {}
        self._lock = threading.Lock()

    def project_for(self, key: str) -> int | None:
        """The id of the project owning active ``key``, or None."""
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[1] > now:
            return entry[0]
        with Session(self._engine) as session:
            row = session.get(IngestKey, key) if len(key) <= 64 else None
            project_id = row.project_id if row is not None and row.active else None
        expires = now + (self._ttl if project_id is not None else self._negative_ttl)
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (project_id, expires)
        return project_id

    def forget(self) -> None:
        """Drop every cached answer."""
        with self._lock:
            self._entries.clear()


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp(value: datetime.datetime) -> str:
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        value = value.replace(tzinfo=datetime.UTC)
    return value.isoformat().replace("+00:00", "Z")


def _key_info(row: IngestKey) -> KeyInfo:
    return KeyInfo(row.key, row.project_id, row.label, row.active, _stamp(row.created_at))


def _info(session: Session, project: Project) -> ProjectInfo:
    keys = session.scalars(
        select(IngestKey).where(IngestKey.project_id == project.id).order_by(IngestKey.created_at)
    )
    return ProjectInfo(
        project.id, project.name, _stamp(project.created_at), tuple(_key_info(k) for k in keys)
    )
