"""The dashboard in a real browser: Debian's Chromium, headless, against a real server.

A browser logs in the way ``opswatch demo`` tells people to: it opens ``/?token=...`` once, gets the
session cookie with the redirect, and lands on the page. ``--dump-dom`` shows what it rendered;
``--screenshot`` what it drew. Skipped (with the reason) where Chromium is not installed
(``apt-get install chromium``), and failed instead under ``CI=true`` (``conftest.require_service``).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import opswatch
from conftest import require_service
from opswatch.server.testing import RunningServer, running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    """Skipped with the reason on a developer machine without Chromium; a failure under ``CI=true``."""
    if CHROMIUM is None:
        require_service("Chromium", "not installed (apt-get install chromium)")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


class CardDeclinedError(Exception):
    pass


def charge_card() -> None:
    raise CardDeclinedError("Your card was declined.")


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once with its own profile directory."""
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def dom(profile: Path, url: str) -> str:
    done = chromium(profile, "--virtual-time-budget=2000", "--dump-dom", url)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("browser")) as running:
        opswatch.init(
            dsn=running.dsn,
            service="donations-api",
            console=False,
            capture_stdlib=False,
            spool_dir=str(running.settings.data_dir / "sdk-spool"),
        )
        try:
            log = opswatch.get_logger("donations")
            opswatch.metrics.donation.completed(
                donation_id="d1", amount=100, method="card", recurring=False, church_id="grace"
            )
            try:
                charge_card()
            except CardDeclinedError as err:
                log.error("Payment failed", {"operation": "payment.stripe.charge"}, err)
            with opswatch.cron_job("church-heartbeat", schedule="every 10 minutes"):
                pass
            assert opswatch.flush(10)
        finally:
            opswatch.shutdown()
        yield running


def test_it_shows_the_login_form_to_a_browser_without_the_token(server: RunningServer, tmp_path: Path) -> None:
    html = dom(tmp_path / "profile", f"{server.url}/")
    assert 'name="token"' in html and "Log in" in html
    assert "Unresolved issues" not in html


def test_it_logs_a_browser_in_from_a_token_link_and_renders_the_overview(
    server: RunningServer, tmp_path: Path
) -> None:
    html = dom(tmp_path / "profile", f"{server.url}/?token={server.admin_token}")
    assert "Unresolved issues" in html and "Events per hour" in html
    assert "CardDeclinedError: Your card was declined." in html
    assert "1 monitor, none failing." in html
    assert server.admin_token not in html


def test_it_keeps_the_browser_logged_in_for_the_next_page(server: RunningServer, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    dom(profile, f"{server.url}/?token={server.admin_token}")
    html = dom(profile, f"{server.url}/issues/1")
    assert "CardDeclinedError" in html and "charge_card" in html and "Resolve" in html


def test_it_draws_the_overview(server: RunningServer, tmp_path: Path) -> None:
    shot = tmp_path / "overview.png"
    done = chromium(
        tmp_path / "profile",
        "--hide-scrollbars",
        "--window-size=1280,900",
        f"--screenshot={shot}",
        f"{server.url}/?token={server.admin_token}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 900)
    assert len(data) > 20_000  # a drawn page, not a blank one
