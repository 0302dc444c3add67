"""Backlogs of batches the server has not taken yet: a directory on disk, or a bounded deque in memory.

A batch is stored exactly as it is posted (gzipped NDJSON) with its record count, so a replay resends the
same bytes and the same ``event_id``s: the server's idempotency makes a repeat harmless, which is why the
spool can favour "maybe twice" over "maybe never" everywhere.

Both backlogs keep batches oldest first and are bounded; past the bound the *oldest* batches are dropped
and their records counted in ``dropped``. ``take`` claims the oldest batch; the caller then reports it
``done`` (delivered or refused for good) or gives it ``back`` (try again later, still the oldest).

The disk spool (``DiskSpool``) is shared safely by several processes using one directory (gunicorn
workers with one DSN, or the next run of the same program):

- a batch is one file ``<time_ns>-<pid>-<seq>-<count>.ndjson.gz``, written to a hidden temporary name and
  renamed into place, so readers never see half a file; names sort in the order batches were written;
- a process claims a file by renaming it to ``<name>.<pid>.sending`` (rename is atomic, so exactly one
  process wins) and deletes it once delivered, or renames it back to retry later;
- a claim left by a process that died (``kill -9`` mid-send) is given back by the next process that
  scans the directory, so its records are sent, perhaps twice, never lost.

Files are not fsynced: they survive the process being killed, not the machine losing power.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import itertools
import os
import stat
import tempfile
import threading
import time
from typing import Protocol

SUFFIX = ".ndjson.gz"
CLAIM_SUFFIX = ".sending"


@dataclasses.dataclass
class Entry:
    """One stored batch: the gzipped body, how many records it holds, and where it lives (disk only)."""

    body: bytes
    count: int
    path: str | None = None


class Backlog(Protocol):
    """What the sink needs from a backlog. Methods raise ``OSError`` only for disk trouble."""

    #: Records dropped because the backlog was past its bound (oldest first).
    dropped: int

    def put(self, body: bytes, count: int) -> None:
        """Store one batch as the newest; drop the oldest batches while past the bound."""
        ...

    def take(self) -> Entry | None:
        """Claim the oldest batch, or return None when there is none."""
        ...

    def done(self, entry: Entry) -> None:
        """Forget a claimed batch (delivered, or refused for good)."""
        ...

    def back(self, entry: Entry) -> None:
        """Return a claimed batch unsent; it stays the oldest."""
        ...

    def empty(self) -> bool:
        """True when no batch is stored or claimed."""
        ...

    def pending(self) -> tuple[int, int, int]:
        """``(batches, records, bytes)`` stored, claimed ones included."""
        ...


class MemoryBacklog:
    """A bounded deque of batches, for when no spool directory is usable (safe across threads)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.dropped = 0
        self._entries: collections.deque[Entry] = collections.deque()
        self._claimed: list[Entry] = []
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, body: bytes, count: int) -> None:
        with self._lock:
            self._entries.append(Entry(body, count))
            self._bytes += len(body)
            while self._bytes > self.max_bytes and self._entries:
                old = self._entries.popleft()
                self._bytes -= len(old.body)
                self.dropped += old.count

    def take(self) -> Entry | None:
        with self._lock:
            if not self._entries:
                return None
            entry = self._entries.popleft()
            self._claimed.append(entry)
            return entry

    def done(self, entry: Entry) -> None:
        with self._lock:
            self._unclaim(entry)
            self._bytes -= len(entry.body)

    def back(self, entry: Entry) -> None:
        with self._lock:
            self._unclaim(entry)
            self._entries.appendleft(entry)

    def _unclaim(self, entry: Entry) -> None:
        self._claimed = [e for e in self._claimed if e is not entry]

    def empty(self) -> bool:
        return not self._entries and not self._claimed

    def pending(self) -> tuple[int, int, int]:
        with self._lock:
            entries = [*self._entries, *self._claimed]
            return len(entries), sum(e.count for e in entries), self._bytes


@dataclasses.dataclass(frozen=True)
class _File:
    name: str
    size: int
    count: int
    claimed: bool


class DiskSpool:
    """A directory of batch files, oldest first by name, at most ``max_bytes`` in total."""

    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.dropped = 0
        self._seq = itertools.count()
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError(f"the spool directory {directory} is not writable")
        self._scan(recover_own=True)  # claims under our own pid are stale at start (a restarted pid 1)

    # -- writing ---------------------------------------------------------------------------------------

    def put(self, body: bytes, count: int) -> None:
        pid = os.getpid()
        name = f"{time.time_ns():020d}-{pid}-{next(self._seq) % 1_000_000:06d}-{count}{SUFFIX}"
        temporary = os.path.join(self.directory, f".{name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
            os.rename(temporary, os.path.join(self.directory, name))
        except BaseException:
            _unlink(temporary)
            raise
        self._enforce_bound()

    def _enforce_bound(self) -> None:
        files = self._scan()
        total = sum(f.size for f in files)
        for f in files:
            if total <= self.max_bytes:
                break
            if f.claimed:
                continue
            if _unlink(os.path.join(self.directory, f.name)):  # another process may have claimed it
                self.dropped += f.count
            total -= f.size

    # -- reading ---------------------------------------------------------------------------------------

    def take(self) -> Entry | None:
        for f in self._scan():
            if f.claimed:
                continue
            path = os.path.join(self.directory, f.name)
            claim = f"{path}.{os.getpid()}{CLAIM_SUFFIX}"
            try:
                os.rename(path, claim)
            except FileNotFoundError:
                continue  # another process claimed it first
            try:
                with open(claim, "rb") as source:
                    body = source.read()
            except OSError:
                _unlink(claim)
                raise
            return Entry(body, f.count, claim)
        return None

    def done(self, entry: Entry) -> None:
        if entry.path is not None:
            _unlink(entry.path)

    def back(self, entry: Entry) -> None:
        if entry.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.rename(entry.path, _unclaimed_path(entry.path))

    def empty(self) -> bool:
        # Names only: a stat could miss a file another thread is renaming (claiming or giving back).
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return True
        return not any(_is_batch(name) for name in names)

    def pending(self) -> tuple[int, int, int]:
        files = self._scan()
        return len(files), sum(f.count for f in files), sum(f.size for f in files)

    # -- the directory ---------------------------------------------------------------------------------

    def _scan(self, recover_own: bool = False) -> list[_File]:
        """The batch files, oldest first, after giving back claims whose process is gone.

        A file renamed while the directory is read (claimed or given back by another thread or process)
        may vanish between the listing and its ``stat``: then the directory is read again.
        """
        for _ in range(5):
            files, complete = self._read_directory(recover_own)
            if complete:
                break
        return files

    def _read_directory(self, recover_own: bool) -> tuple[list[_File], bool]:
        files: list[_File] = []
        complete = True
        own = os.getpid()
        try:
            listing = list(os.scandir(self.directory))
        except FileNotFoundError:
            return files, True
        for item in listing:
            name = item.name
            claimed = name.endswith(CLAIM_SUFFIX)
            base = name
            if claimed:
                base, owner = _split_claim(name)
                if owner is None:
                    continue
                if (owner == own and recover_own) or (owner != own and not _alive(owner)):
                    try:
                        os.rename(item.path, os.path.join(self.directory, base))
                    except FileNotFoundError:
                        continue
                    claimed = False
                    name = base
            if not base.endswith(SUFFIX) or base.startswith("."):
                continue
            count = _count_of(base)
            if count is None:
                continue
            try:
                size = os.stat(os.path.join(self.directory, name)).st_size
            except FileNotFoundError:
                complete = False  # renamed or delivered meanwhile
                continue
            files.append(_File(name, size, count, claimed))
        files.sort(key=lambda f: f.name)
        return files, complete


def _is_batch(name: str) -> bool:
    base = _split_claim(name)[0] if name.endswith(CLAIM_SUFFIX) else name
    return base.endswith(SUFFIX) and not base.startswith(".") and _count_of(base) is not None


def _split_claim(name: str) -> tuple[str, int | None]:
    stem = name[: -len(CLAIM_SUFFIX)]
    base, _, pid = stem.rpartition(".")
    return (base, int(pid)) if pid.isdigit() else (name, None)


def _unclaimed_path(path: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, _split_claim(name)[0])


def _count_of(name: str) -> int | None:
    parts = name[: -len(SUFFIX)].split("-")
    return int(parts[-1]) if len(parts) == 4 and parts[-1].isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # somebody else's live process
    except OSError:
        return True
    return True


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def default_spool_dir(identity: str) -> str:
    """A private per-DSN directory under the temp dir: ``opswatch-spool-<uid>-<hash of identity>``.

    Raises ``PermissionError`` when the path exists but is not a real directory owned by this user
    (another user on a shared ``/tmp`` could otherwise read or plant batches).
    """
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = os.path.join(tempfile.gettempdir(), f"opswatch-spool-{uid}-{digest}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        raise PermissionError(f"{path} is not a directory owned by this user; not spooling there")
    return path
