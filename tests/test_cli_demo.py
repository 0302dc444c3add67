"""``opswatch demo`` as a newcomer runs it: a separate process, its banner, data that shows up at once,
a clean stop (at the end of ``--duration``, or on a signal), and the temporary data directory gone
afterwards.

Nothing waits for a fixed time: each check waits for its condition under a deadline and fails with what
it last saw. The demo with the app gets a duration far longer than the checks need and is stopped with
SIGTERM once they are done: a short ``--duration`` would race the checks on a busy machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from opswatch.cli import main

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_demo(*args: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPSWATCH_", "SLACK_", "SENTRY_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "opswatch", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )


def read_banner(process: subprocess.Popen[str]) -> dict[str, str]:
    """The banner's lines up to "Press Ctrl-C" (or "Stops after" with --duration), by what they announce."""
    assert process.stdout is not None
    banner: dict[str, str] = {}
    while True:
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "the demo ended before its banner"
        line = line.strip()
        if line.startswith(("Press Ctrl-C", "Stops after")):
            banner["last"] = line
            return banner
        if " listening on " in line:
            banner["url"] = line.split(" listening on ")[1].split(" ")[0]
            banner["data_dir"] = line.split("(data in ")[1].split(",")[0].rstrip(")")
        elif line.startswith("Alert rules: "):
            banner["alerts"] = line
        elif line.startswith("dashboard: "):
            banner["dashboard"] = line.removeprefix("dashboard: ")
        elif line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            banner[name] = value


def run_cli_with(banner: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """``opswatch *argv`` in a shell that ran the banner's two ``export`` lines, nothing else."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPSWATCH_", "SLACK_", "SENTRY_"))}
    environ |= {name: banner[name] for name in ("OPSWATCH_URL", "OPSWATCH_ADMIN_TOKEN")}
    return subprocess.run(
        [sys.executable, "-m", "opswatch", *argv], capture_output=True, text=True, env=environ, timeout=60
    )


def poll(client: httpx.Client, url: str, ready: Any, timeout: float = 60.0) -> Any:
    """GET ``url`` until ``ready(json)`` holds and return that answer; fail with the last one at the
    deadline (generous: the simulated app is slow on a busy machine, and a pass returns at once)."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(url).json()
        if ready(body):
            return body
        assert time.monotonic() < deadline, f"{url} never got ready; last answer: {str(body)[:500]}"
        time.sleep(0.1)


def test_it_runs_the_server_and_the_simulated_app_until_the_duration_ends() -> None:
    port = free_port()
    process = start_demo("--duration", "600", "--port", str(port), "--seed", "7")
    try:
        banner = read_banner(process)
        url = f"http://127.0.0.1:{port}"
        assert banner["url"] == url
        assert banner["dashboard"] == f"{url}/?token={banner['OPSWATCH_ADMIN_TOKEN']}"
        assert banner["OPSWATCH_DSN"].endswith(f"@127.0.0.1:{port}/1")
        assert banner["OPSWATCH_URL"] == url
        assert banner["last"] == "Stops after 600 seconds."  # no "Press Ctrl-C" when it stops by itself
        headers = {"Authorization": f"Bearer {banner['OPSWATCH_ADMIN_TOKEN']}"}
        with httpx.Client(headers=headers, timeout=10, trust_env=False) as client:
            poll(client, f"{url}/api/0/issues", lambda b: b["total"] >= 1)
            aimed = run_cli_with(banner, "issues", "list")  # the exported lines are all the CLI needs
            assert aimed.returncode == 0 and "issue(s)" in aimed.stdout, aimed.stderr
            events = poll(client, f"{url}/api/0/events?limit=1000", lambda b: len(b["events"]) >= 20)
            operations = {event.get("operation") for event in events["events"]}
            assert {"metrics.donation.completed", "donations.create.success", "cron.checkin"} <= operations
            sent = [event for event in events["events"] if event.get("kind") != "state_change"]  # the server's own
            assert {event["service"] for event in sent} == {"church-app"}
            issues = poll(client, f"{url}/api/0/issues", lambda b: b["total"] >= 2)
            titles = [issue["title"] for issue in issues["items"]]
            assert any(title.startswith("CardDeclinedError") for title in titles), titles
            assert any(title.startswith("DatabaseTimeoutError") for title in titles), titles
            monitors = poll(client, f"{url}/api/0/monitors", lambda b: b["total"] >= 2)
            slugs = {monitor["slug"]: monitor for monitor in monitors["items"]}
            assert slugs["church-heartbeat"]["schedule"] == "every 10 seconds"
            assert "sync-member-directory" in slugs
            donors = [e for e in events["events"] if e.get("operation") == "donations.create.success"]
            assert donors and all("***@" in str(e.get("donor_email")) for e in donors)  # masked in the app
            page = client.get(f"{url}/")
            assert page.status_code == 200 and "CardDeclinedError" in page.text
        process.send_signal(signal.SIGTERM)  # seen everything: stop it now rather than in ten minutes
        assert process.wait(60) == 0
        out = process.stdout.read() if process.stdout else ""
        assert "donations" in out and "declined" in out  # the app's closing summary
        closing = out.strip().splitlines()[-1]
        assert closing.startswith("opswatch demo: stopped after ") and "cron monitors; data removed" in closing
        assert "Press Ctrl-C" not in out
        assert not Path(banner["data_dir"]).exists()  # the temporary data went with it
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_it_runs_only_the_server_without_the_app_and_keeps_a_given_data_dir(tmp_path: Path) -> None:
    process = start_demo("--no-app", "--duration", "2", "--port", "0", "--data-dir", str(tmp_path / "data"))
    try:
        banner = read_banner(process)
        headers = {"Authorization": f"Bearer {banner['OPSWATCH_ADMIN_TOKEN']}"}
        events = httpx.get(f"{banner['url']}/api/0/events", headers=headers, timeout=10, trust_env=False)
        assert events.json()["events"] == []
        assert process.wait(60) == 0
        assert (tmp_path / "data" / "events.duckdb").exists()
        assert not (tmp_path / "data" / "demo-rules.toml").exists()  # no app, no demo rules to watch it
        assert "alerts" not in banner
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_it_refuses_a_duration_that_is_not_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--duration", "0"]) == 2
    assert "--duration" in capsys.readouterr().err
    assert main(["demo", "--time-scale", "0"]) == 2
    assert "--time-scale" in capsys.readouterr().err


def watch_rule(
    client: httpx.Client, url: str, rule: str, since: float = 0.0, timeout: float = 240.0
) -> list[str]:
    """Poll the rule until its history holds a resolve after a firing; return the states seen in order
    (each change once), counting only polls after ``since`` (``time.monotonic()``)."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        answer = client.get(f"{url}/api/0/rules/{rule}").json()
        states = [alert["state"] for alert in answer["alerts"]]
        if time.monotonic() >= since and states and (not seen or seen[-1] != states[0]):
            seen.append(states[0])
        kinds = [row["kind"] for row in reversed(answer["history"])]  # oldest first
        resolved = "firing" in kinds and "resolved" in kinds[kinds.index("firing") :]
        # the answer reads the instances, then the history: a round may resolve in between, so the
        # instance's own state is awaited too (the next poll shows it)
        if resolved and seen and seen[-1] not in ("pending", "firing"):
            return seen
        assert time.monotonic() < deadline, f"{rule} never fired and resolved; states {seen}, {answer}"
        time.sleep(0.2)


def test_its_alert_rules_go_pending_fire_and_resolve_on_the_spike_and_the_quiet_spell() -> None:
    port = free_port()
    # Three times faster: the spike at 0:13-0:33, the quiet spell at 0:50-1:10, 10 s rule windows.
    process = start_demo("--duration", "600", "--port", str(port), "--seed", "5", "--time-scale", "3")
    try:
        banner = read_banner(process)
        url = banner["url"]
        assert banner["alerts"].startswith("Alert rules: an error spike at 0:13-0:33 (demo-error-spike)")
        headers = {"Authorization": f"Bearer {banner['OPSWATCH_ADMIN_TOKEN']}"}
        with httpx.Client(headers=headers, timeout=10, trust_env=False) as client:
            rules = {r["name"]: r for r in client.get(f"{url}/api/0/rules").json()["items"]}
            assert rules["demo-error-spike"]["window"] == "10s" and rules["demo-no-donations"]["for"] == "3s"
            spike = watch_rule(client, url, "demo-error-spike")
            assert spike[-3:] == ["pending", "firing", "inactive"], spike
            history = client.get(f"{url}/api/0/rules/demo-error-spike").json()["history"]
            kinds = {row["kind"] for row in history}
            assert {"firing", "resolved"} <= kinds <= {"firing", "updated", "resolved"}  # one incident
            quiet = watch_rule(client, url, "demo-no-donations", since=time.monotonic())
            assert quiet[-3:] == ["pending", "firing", "inactive"], quiet
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
