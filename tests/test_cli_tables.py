"""The CLI's tables at 80 columns, in a real terminal, and piped, against a real server.

At a width, key columns (statuses, numbers, times) stay whole and only free text wraps, at spaces; piped
output with no ``COLUMNS`` is one line per row whatever the terminal; ``opswatch query`` switches to one
block per row when its rows do not fit, leaving out the columns that are NULL in every row shown.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from events_cast import donation
from opswatch.cli._table import text_width
from opswatch.record import format_timestamp, serialize_exception
from opswatch.server.testing import RunningServer, running_server

pytestmark = pytest.mark.slow

LONG_SLUG = "nightly-donation-reconciliation-stripe-payouts"
TITLE_WORDS = (
    "Your card was declined because the issuing bank refused the charge for donation to the "
    "Riverside Community Church building fund"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CardDeclinedError(Exception):
    pass


def decline() -> None:
    raise CardDeclinedError(TITLE_WORDS)


def error_event(n: int) -> dict[str, Any]:
    try:
        decline()
    except CardDeclinedError as err:
        error = serialize_exception(err)
    return {
        "event_id": f"e{n:031x}",
        "timestamp": format_timestamp(time.time()),
        "level": "error",
        "message": "charge declined",
        "operation": "payment.stripe.charge",
        "error": error,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("tables"), retention_days=36500) as running:
        with httpx.Client(base_url=running.url, trust_env=False, timeout=10) as client:
            answer = client.post(
                f"/api/{running.project_id}/events/",
                content=b"".join(orjson.dumps(error_event(n)) + b"\n" for n in (1, 2)),
                headers={"Authorization": f"Bearer {running.key}"},
            )
            assert answer.status_code == 200
            admin = {"Authorization": f"Bearer {running.admin_token}"}
            for slug in (LONG_SLUG, "heartbeat"):
                created = client.post(
                    "/api/0/monitors",
                    json={"slug": slug, "config": {"schedule": "0 2 * * *", "timezone": "Europe/Berlin"}},
                    headers=admin,
                )
                assert created.status_code in (200, 201), created.text
                assert client.get(f"/ping/{running.key}/{slug}/start").status_code == 200
                time.sleep(0.02)
                assert client.get(f"/ping/{running.key}/{slug}").status_code == 200
        running.ctx.store.append(
            [donation(1, church="church-a", amount=100.0), donation(2, church="church-b", amount=30.0)]
        )
        yield running


def environment(server: RunningServer, columns: int | None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPSWATCH_") and k != "COLUMNS"}
    environ |= {"OPSWATCH_URL": server.url, "OPSWATCH_ADMIN_TOKEN": server.admin_token}
    if columns is not None:
        environ["COLUMNS"] = str(columns)
    return environ


def cli(server: RunningServer, *argv: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    """``opswatch *argv`` with its output piped (and ``COLUMNS`` when given)."""
    result = subprocess.run(
        [sys.executable, "-m", "opswatch", *argv],
        capture_output=True,
        text=True,
        env=environment(server, columns),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result


def cli_in_terminal(server: RunningServer, *argv: str, columns: int) -> str:
    """``opswatch *argv`` in a pseudo-terminal ``columns`` wide (no ``COLUMNS``); its screen text."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "opswatch", *argv],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=environment(server, None),
        close_fds=True,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(60) == 0
    return _ANSI.sub("", b"".join(chunks).decode().replace("\r\n", "\n"))


def widest(text: str) -> int:
    return max(text_width(line) for line in text.splitlines())


def row_of(text: str, needle: str) -> str:
    [line] = [line for line in text.splitlines() if needle in line]
    return line


# -- crons list ---------------------------------------------------------------------------------------------


def test_it_keeps_the_success_rate_and_average_duration_of_crons_at_80_columns(server: RunningServer) -> None:
    out = cli(server, "crons", "list", columns=80).stdout
    assert widest(out) <= 80
    header = row_of(out, "Status")
    assert header.split()[-2:] == ["OK", "Avg"]
    heartbeat = row_of(out, "heartbeat")
    assert re.search(r"\bok\b.*\bago\b.*\bin \d+[smhd]\b.*\b100%\s+\d+ ms$", heartbeat), heartbeat
    assert "nightly-donation-" in out and "(Europe/Berlin)" in out  # the slug wraps, it is not dropped


def test_it_fits_crons_in_80_columns_keeping_success_rate_and_duration(server: RunningServer) -> None:
    screen = cli_in_terminal(server, "crons", "list", columns=80)
    assert widest(screen) <= 80
    assert re.search(r"100%\s+\d+ ms$", row_of(screen, "heartbeat"))


def test_it_prints_one_line_per_monitor_when_piped(server: RunningServer) -> None:
    out = cli(server, "crons", "list").stdout
    row = row_of(out, LONG_SLUG)  # whole, on one line, although that line is wider than 80
    assert text_width(row) > 80 and re.search(r"100%\s+\d+ ms$", row)
    assert len(out.splitlines()) == 4  # title, header, two monitors
    assert "stripe-payouts · 0 2 * * * (Europe/Berlin)" in row


# -- issues list --------------------------------------------------------------------------------------------


def test_it_wraps_issue_titles_at_spaces_and_keeps_status_and_times_whole(server: RunningServer) -> None:
    out = cli(server, "issues", "list", columns=80).stdout
    assert widest(out) <= 80
    first = out.splitlines()[2]
    assert re.match(r"\s*\d+\s+unresolved\s+error\s+2\s+\d+s ago\s+CardDeclinedError:", first), first
    offset = out.splitlines()[1].index("Issue")
    shown = " ".join(line[offset:] for line in out.splitlines()[2:5]).split()
    title = f"CardDeclinedError: {TITLE_WORDS}".split()
    cut = next(i for i, word in enumerate(shown) if word.endswith("…"))  # shortened after 3 lines
    assert shown[:cut] == title[:cut] and shown[cut] == title[cut] + "…"  # whole words, none cut in two
    assert "24h left out to fit the width" in out


def test_it_shows_the_whole_issue_row_and_the_sparkline_when_piped(server: RunningServer) -> None:
    out = cli(server, "issues", "list").stdout
    assert f"CardDeclinedError: {TITLE_WORDS} · " in row_of(out, "unresolved")
    assert "▁" in out and "left out" not in out


# -- query --------------------------------------------------------------------------------------------------


def test_it_shows_wide_rows_as_blocks_without_the_all_null_columns(server: RunningServer) -> None:
    result = cli(
        server, "query", "SELECT * FROM logs WHERE kind = 'log' ORDER BY event_id LIMIT 2", columns=80
    )
    out = result.stdout
    assert widest(out) <= 80
    assert out.startswith("-[ row 1 ]") and "-[ row 2 ]" in out and "…" not in out
    fields = dict(
        line.split(None, 1) for line in out.splitlines() if line and not line.startswith((" ", "-["))
    )
    assert fields["church_id"] == "church-b" and fields["amount"] == "30.0"
    assert "trace_id" not in fields and "duration_ms" not in fields
    note = result.stderr.splitlines()[0]
    assert note.startswith("left out ") and "NULL in every row shown" in note and "trace_id" in note


def test_it_keeps_a_narrow_answer_a_table(server: RunningServer) -> None:
    sql = "SELECT church_id, count(*), sum(amount) FROM logs WHERE kind = 'log' GROUP BY 1 ORDER BY 1"
    out = cli(server, "query", sql, columns=80).stdout
    assert out.splitlines() == [
        "church_id  count(*)  sum(amount)",
        "church-a          1        100.0",
        "church-b          1         30.0",
    ]


def test_it_prints_wide_rows_one_line_each_when_piped(server: RunningServer) -> None:
    out = cli(server, "query", "SELECT * FROM logs WHERE kind = 'log' ORDER BY event_id LIMIT 2").stdout
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0].split()[:3] == ["timestamp", "level", "message"]
    assert "church-a" in lines[1] and "church-b" in lines[2]


def test_it_heads_csv_columns_with_the_expressions_as_written(server: RunningServer) -> None:
    sql = "SELECT level, count(*), max(amount) AS top FROM logs WHERE kind = 'log' GROUP BY level"
    rows = list(csv.reader(io.StringIO(cli(server, "query", "--format", "csv", sql).stdout)))
    assert rows == [["level", "count(*)", "top"], ["info", "2", "100.0"]]
