"""The transport's backlogs: the disk spool shared by processes, and the in-memory fallback."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from opswatch.sinks._spool import DiskSpool, MemoryBacklog, default_spool_dir


def batch(n: int) -> bytes:
    return f"batch {n} ".encode() * 10  # 80 bytes


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    return int(done.stdout)


def test_it_returns_batches_oldest_first(tmp_path: Path) -> None:
    spool = DiskSpool(str(tmp_path), max_bytes=10_000)
    for n in range(5):
        spool.put(batch(n), count=n + 1)

    taken = []
    while (entry := spool.take()) is not None:
        taken.append((entry.body, entry.count))
        spool.done(entry)

    assert taken == [(batch(n), n + 1) for n in range(5)]
    assert spool.empty()


def test_it_gives_a_batch_back_to_the_front(tmp_path: Path) -> None:
    spool = DiskSpool(str(tmp_path), max_bytes=10_000)
    spool.put(batch(1), 1)
    spool.put(batch(2), 1)

    entry = spool.take()
    assert entry is not None and entry.body == batch(1)
    assert spool.pending() == (2, 2, 160)  # a claimed batch is still pending
    spool.back(entry)

    again = spool.take()
    assert again is not None and again.body == batch(1)


def test_it_drops_the_oldest_batches_past_the_bound_and_counts_their_records(tmp_path: Path) -> None:
    spool = DiskSpool(str(tmp_path), max_bytes=250)  # room for three 80-byte batches
    for n in range(5):
        spool.put(batch(n), count=10)

    assert spool.dropped == 20
    assert spool.pending() == (3, 30, 240)
    first = spool.take()
    assert first is not None and first.body == batch(2)


def test_it_never_drops_a_batch_another_process_is_sending(tmp_path: Path) -> None:
    spool = DiskSpool(str(tmp_path), max_bytes=170)
    spool.put(batch(0), 1)
    in_flight = spool.take()
    spool.put(batch(1), 1)
    spool.put(batch(2), 1)

    assert in_flight is not None and os.path.exists(in_flight.path or "")
    assert spool.dropped == 1  # batch 1 went, not the claimed batch 0


def test_it_keeps_batches_for_the_next_process(tmp_path: Path) -> None:
    DiskSpool(str(tmp_path), max_bytes=10_000).put(batch(7), 3)

    later = DiskSpool(str(tmp_path), max_bytes=10_000)
    entry = later.take()

    assert entry is not None and (entry.body, entry.count) == (batch(7), 3)


def test_it_lets_only_one_claimant_take_a_batch(tmp_path: Path) -> None:
    one = DiskSpool(str(tmp_path), max_bytes=10_000)
    two = DiskSpool(str(tmp_path), max_bytes=10_000)
    one.put(batch(1), 1)

    assert one.take() is not None
    assert two.take() is None
    assert not two.empty()


def test_it_gives_back_a_claim_left_by_a_process_that_died(tmp_path: Path) -> None:
    spool = DiskSpool(str(tmp_path), max_bytes=10_000)
    spool.put(batch(1), 4)
    (name,) = os.listdir(tmp_path)
    os.rename(tmp_path / name, tmp_path / f"{name}.{dead_pid()}.sending")  # killed mid-send

    entry = spool.take()

    assert entry is not None and (entry.body, entry.count) == (batch(1), 4)


def test_it_gives_back_its_own_stale_claims_when_it_starts(tmp_path: Path) -> None:
    # A container's pid 1 restarts with the same pid: its old claims cannot be in flight.
    DiskSpool(str(tmp_path), max_bytes=10_000).put(batch(1), 1)
    (name,) = os.listdir(tmp_path)
    os.rename(tmp_path / name, tmp_path / f"{name}.{os.getpid()}.sending")

    entry = DiskSpool(str(tmp_path), max_bytes=10_000).take()

    assert entry is not None and entry.body == batch(1)


def test_it_ignores_half_written_and_foreign_files(tmp_path: Path) -> None:
    spool = DiskSpool(str(tmp_path), max_bytes=10_000)
    (tmp_path / ".123-1-000000-5.ndjson.gz.tmp").write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("hello")

    assert spool.empty()
    assert spool.take() is None


def test_it_refuses_a_directory_it_cannot_write(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")

    with pytest.raises(OSError):
        DiskSpool(str(a_file / "spool"), max_bytes=10_000)


def test_it_picks_a_private_directory_per_dsn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    one = default_spool_dir("http://127.0.0.1:8321/1#key")
    again = default_spool_dir("http://127.0.0.1:8321/1#key")
    other = default_spool_dir("http://127.0.0.1:8321/2#key")

    assert one == again != other
    assert os.path.dirname(one) == str(tmp_path)
    assert os.stat(one).st_mode & 0o777 == 0o700


def test_it_refuses_a_planted_symlink_as_the_default_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = default_spool_dir("http://127.0.0.1:8321/1#key")
    os.rmdir(path)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", path)

    with pytest.raises(PermissionError):
        default_spool_dir("http://127.0.0.1:8321/1#key")


def test_it_bounds_the_memory_backlog_dropping_the_oldest() -> None:
    memory = MemoryBacklog(max_bytes=250)
    for n in range(5):
        memory.put(batch(n), count=2)

    assert memory.dropped == 4
    entry = memory.take()
    assert entry is not None and entry.body == batch(2)
    memory.back(entry)
    assert memory.pending() == (3, 6, 240)
    while (entry := memory.take()) is not None:
        memory.done(entry)
    assert memory.empty()
