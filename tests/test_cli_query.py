"""``opswatch query``: a table for people, JSON and CSV for programs, a stopped server's data or a live one."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from events_cast import donation
from opswatch.cli import main
from opswatch.server.store.duckdb import EVENTS_FILENAME, DuckDBStore
from opswatch.server.testing import running_server

TOP_CHURCHES = (
    "SELECT churchId, COUNT(*) AS donation_count, SUM(amount) AS total_amount FROM logs "
    "WHERE operation = 'metrics.donation.completed' GROUP BY churchId ORDER BY total_amount DESC LIMIT 10"
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A stopped server's data directory holding three donations to two churches."""
    directory = tmp_path / "opswatch-data"
    directory.mkdir()
    with DuckDBStore(directory / EVENTS_FILENAME) as store:
        store.append(
            [
                donation(1, church="church-a", amount=100.0),
                donation(2, church="church-b", amount=30.0),
                donation(3, church="church-b", amount=20.0),
            ]
        )
    return directory


def test_it_prints_a_table_for_people(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--data-dir", str(data_dir), TOP_CHURCHES]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["churchId", "donation_count", "total_amount"]
    assert lines[1].split() == ["church-a", "1", "100.0"]
    assert lines[2].split() == ["church-b", "2", "50.0"]
    assert "2 rows in" in err


def test_it_prints_json_for_programs(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--data-dir", str(data_dir), "--format", "json", TOP_CHURCHES]) == 0
    answer = orjson.loads(capsys.readouterr().out)
    assert answer["columns"] == ["churchId", "donation_count", "total_amount"]
    assert answer["rows"] == [["church-a", 1, 100.0], ["church-b", 2, 50.0]]
    assert answer["truncated"] is False


def test_it_prints_csv_for_programs(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT event_id, timestamp, recurring, error FROM logs ORDER BY event_id LIMIT 1"
    assert main(["query", "--data-dir", str(data_dir), "--format", "csv", sql]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [["event_id", "timestamp", "recurring", "error"], [f"{1:032x}", "2025-11-01T00:00:00.000Z", "false", ""]]


def test_it_reads_the_sql_from_stdin(data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("SELECT count(*) AS n FROM events"))
    assert main(["query", "--data-dir", str(data_dir), "--format", "csv", "-"]) == 0
    assert capsys.readouterr().out == "n\n3\n"


def test_it_says_why_sql_is_refused(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--data-dir", str(data_dir), "DELETE FROM logs"]) == 2
    assert "only SELECT queries are allowed" in capsys.readouterr().err


def test_it_warns_when_the_row_cap_cut_the_answer(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--data-dir", str(data_dir), "--max-rows", "2", "--format", "csv", "SELECT 1 FROM logs"]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 3
    assert "cut at 2 rows" in err


def test_it_says_when_the_data_directory_holds_no_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--data-dir", str(tmp_path), "SELECT 1"]) == 2
    assert "no event store" in capsys.readouterr().err


@pytest.mark.slow
def test_it_points_to_url_when_a_server_holds_the_data(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    holder = textwrap.dedent(
        f"""
        import sys
        from opswatch.server.store.duckdb import DuckDBStore
        store = DuckDBStore({str(data_dir / EVENTS_FILENAME)!r})
        print("open", flush=True)
        sys.stdin.read()
        store.close()
        """
    )
    child = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    try:
        assert child.stdout.readline().strip() == "open"
        assert main(["query", "--data-dir", str(data_dir), "SELECT 1"]) == 2
        assert "in use" in (err := capsys.readouterr().err) and "--url" in err
    finally:
        child.stdin.close()
        child.wait(30)
        child.stdout.close()


@pytest.mark.slow
def test_it_asks_a_running_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_server(tmp_path, retention_days=36500) as server:  # the cast lives in November 2025
        server.ctx.store.append([donation(1, church="church-a", amount=12.5)])
        url = ["--url", server.url, "--token", server.admin_token]
        assert main(["query", *url, "--format", "json", TOP_CHURCHES]) == 0
        assert orjson.loads(capsys.readouterr().out)["rows"] == [["church-a", 1, 12.5]]
        assert main(["query", *url, "SELECT * FROM read_csv('/etc/passwd')"]) == 2
        assert "table functions are not allowed" in capsys.readouterr().err
        assert main(["query", "--url", server.url, "--token", "wrong", "SELECT 1"]) == 2
        assert "admin token" in capsys.readouterr().err
