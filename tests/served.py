"""``opswatch serve`` in its own process, for tests that measure the server itself (its memory, its
sockets) rather than the test process: ``served(tmp_path, **env)`` yields a ``Served`` with the URL,
the admin token, the default project's key and the process id.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Served:
    """A running ``opswatch serve``."""

    url: str
    host: str
    port: int
    admin_token: str
    key: str
    project_id: int
    pid: int

    def status(self, field: str) -> int:
        """A ``kB`` figure of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM`` ...), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0])
        raise KeyError(field)

    def peak_rss_mib(self) -> float:
        """The server process's peak resident memory so far (``VmHWM``), in MiB."""
        return self.status("VmHWM") / 1024

    def rss_mib(self) -> float:
        """The server process's resident memory now (``VmRSS``), in MiB."""
        return self.status("VmRSS") / 1024


def read_banner(process: subprocess.Popen[str]) -> dict[str, str]:
    """What ``opswatch serve`` prints at start: ``url``, ``OPSWATCH_ADMIN_TOKEN``, ``OPSWATCH_DSN``."""
    banner: dict[str, str] = {}
    assert process.stdout is not None
    while "OPSWATCH_DSN" not in banner:
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "the server exited"
        if "=" in line:
            name, _, value = line.strip().partition("=")
            banner[name] = value
        elif "listening on" in line:
            banner["url"] = line.split("listening on ")[1].split(" ")[0]
    return banner


@contextlib.contextmanager
def served(tmp_path: Path, **env: str) -> Iterator[Served]:
    """Start ``opswatch serve --port 0`` with ``OPSWATCH_*`` settings ``env``; stop it afterwards."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPSWATCH_")}
    environ.update(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "opswatch", "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    try:
        banner = read_banner(process)
        dsn = banner["OPSWATCH_DSN"]
        host, _, port = banner["url"].split("//")[1].partition(":")
        yield Served(
            url=banner["url"],
            host=host,
            port=int(port),
            admin_token=banner["OPSWATCH_ADMIN_TOKEN"],
            key=dsn.split("//")[1].split("@")[0],
            project_id=int(dsn.rsplit("/", 1)[1]),
            pid=process.pid,
        )
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)
