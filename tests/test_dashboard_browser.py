"""The dashboard in a real browser, used the way a person uses it: Debian's Chromium, driven by Playwright.

Every form the pages have is filled in and submitted by clicking, as someone would: the login form
(typing the token), the issue and log filters, the query box, Resolve / Ignore / Reopen on an issue,
Pause / Resume / Edit on a cron monitor, a silence created and expired on the Alerts page, a rule
added there (a bad one first) and deleted, and Log out; and a page on another origin that posts to the dashboard is refused. Each test asserts what the page shows afterwards.

Chromium is ``/usr/bin/chromium`` (``apt-get install chromium``); Playwright drives it (no browser
download). Without either, the tests are skipped with the reason on a developer's machine, and fail
under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import opswatch
from opswatch.server.testing import RunningServer, running_server

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # said by the browser fixture: skipped on a developer's machine, failed under CI
    sync_playwright = None

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Where a screenshot of each page is kept when set (to look at them): ``OPSWATCH_SCREENSHOTS=/tmp/shots``.
SHOTS = os.environ.get("OPSWATCH_SCREENSHOTS")


class CardDeclinedError(Exception):
    pass


class ReceiptMailerError(Exception):
    pass


def charge_card() -> None:
    amount = 100
    raise CardDeclinedError(f"Your card was declined (${amount}).")


def send_receipt() -> None:
    raise ReceiptMailerError("the receipt mailer is down")


def unavailable(reason: str) -> None:
    """Skip with the reason on a developer's machine; fail under CI, where the browser must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser tests must run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, started once for the module."""
    if CHROMIUM is None:
        unavailable("Chromium is not installed (apt-get install chromium)")
    if sync_playwright is None:
        unavailable("Playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as driver:
        try:
            chromium = driver.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
            )
        except PlaywrightError as err:
            unavailable(f"Chromium did not start: {str(err)[:500]}")
        try:
            yield chromium
        finally:
            chromium.close()


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
            for index, church in enumerate(("grace", "grace", "st-marks")):
                opswatch.metrics.donation.completed(
                    donation_id=f"d{index}", amount=50 + index * 25, method="card", recurring=False,
                    church_id=church,
                )
            for error, operation in ((charge_card, "payment.stripe.charge"), (send_receipt, "receipts.send")):
                try:
                    opswatch.track_performance(operation, error)
                except Exception as err:
                    log.error("Payment failed" if error is charge_card else "Receipt not sent",
                              {"operation": operation}, err)
            with opswatch.cron_job("church-heartbeat", schedule="every 10 minutes"):
                pass
            assert opswatch.flush(10)
        finally:
            opswatch.shutdown()
        yield running


@pytest.fixture
def page(browser: Any, server: RunningServer) -> Iterator[Any]:
    """A fresh browser window (no cookies), 1280 x 900."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    window = context.new_page()
    try:
        yield window
    finally:
        context.close()


def log_in(page: Any, server: RunningServer, path: str = "/") -> None:
    """Open ``path``, get sent to the login form, type the token and submit, as a person does."""
    page.goto(f"{server.url}{path}")
    page.get_by_label("Admin token").fill(server.admin_token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def issue_id(server: RunningServer, title_part: str) -> int:
    with httpx.Client(timeout=30, trust_env=False) as http:
        items = http.get(f"{server.url}/api/0/issues?status=all", headers=server.admin_headers).json()["items"]
    return next(int(item["id"]) for item in items if title_part in item["title"])


def shoot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_it_logs_in_with_the_token_typed_into_the_form(page: Any, server: RunningServer) -> None:
    page.goto(f"{server.url}/issues")
    assert page.url.startswith(f"{server.url}/login")
    page.get_by_label("Admin token").fill("a guess")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not this server's admin token")
    page.get_by_label("Admin token").fill(server.admin_token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.url}/issues")
    assert page.get_by_role("heading", name="Issues").is_visible()
    assert "CardDeclinedError" in page.inner_text("main")
    assert server.admin_token not in page.content()


def test_it_logs_a_browser_in_from_a_token_link_and_renders_the_overview(page: Any, server: RunningServer) -> None:
    page.goto(f"{server.url}/?token={server.admin_token}")
    assert page.url == f"{server.url}/"
    text = page.inner_text("main")
    assert "Unresolved issues" in text and "Events per hour" in text
    assert "1 monitor, none failing." in text
    assert page.locator(".y-axis").first.inner_text().split("\n")[-1] == "0"  # values on the chart's axis


def test_it_filters_issues_and_logs_with_their_forms(page: Any, server: RunningServer) -> None:
    log_in(page, server, "/issues")
    page.get_by_label("Search").fill("type:ReceiptMailerError")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/issues?status=unresolved&query=type*")
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1 and "ReceiptMailerError" in rows.first.inner_text()
    page.goto(f"{server.url}/logs")
    page.get_by_label("Level").select_option("error")
    page.get_by_label("Text").fill("receipt")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/logs?level=error*")
    messages = page.locator("table.logs summary").all_inner_texts()
    assert messages == ["Receipt not sent"]


def test_it_runs_a_query_from_the_form(page: Any, server: RunningServer) -> None:
    log_in(page, server, "/query")
    page.get_by_role("button", name="Run").click()  # the seed's donation query, as prefilled
    page.wait_for_selector("table.results")
    rows = [row.split("\t") for row in page.locator("table.results tbody tr").all_inner_texts()]
    assert rows == [["grace", "2", "125"], ["st-marks", "1", "100"]]
    headers = page.locator("table.results th")
    assert headers.nth(1).evaluate("th => getComputedStyle(th).textAlign") == "right"
    assert headers.nth(0).evaluate("th => getComputedStyle(th).textAlign") == "left"
    page.get_by_label("SQL").fill("SELECT count(*) AS events FROM logs WHERE level = 'error'")
    page.get_by_label("SQL").press("Control+Enter")
    page.wait_for_selector("table.results th:text('events')")
    assert page.locator("table.results tbody td").inner_text() == "2"
    page.get_by_label("SQL").fill("DROP TABLE logs")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("alert")).to_contain_text("only SELECT queries are allowed")


def test_it_resolves_ignores_and_reopens_an_issue_from_its_page(page: Any, server: RunningServer) -> None:
    target = issue_id(server, "ReceiptMailerError")
    log_in(page, server, f"/issues/{target}")
    status = page.locator(".issue-head .badge[class*=status-]")
    assert status.inner_text() == "unresolved"
    page.get_by_role("button", name="Resolve").click()
    expect(status).to_have_text("resolved")
    assert page.url == f"{server.url}/issues/{target}"
    page.get_by_role("button", name="Reopen").click()
    expect(status).to_have_text("unresolved")
    page.get_by_label("Ignore for").select_option(label="for 1 hour")
    page.get_by_role("button", name="Ignore").click()
    expect(status).to_have_text("ignored")
    assert "ignored until" in page.locator(".issue-head").inner_text()
    activity = page.locator("ol.activity li").all_inner_texts()
    assert [line.split(" → ")[0].split()[-1] for line in activity[:3]] == ["ignored", "reopened", "resolved"]
    assert all(line.endswith("by dashboard") for line in activity[:3])
    page.get_by_role("button", name="Reopen").click()
    expect(status).to_have_text("unresolved")


def test_it_shows_the_apps_frames_with_source_and_folds_library_frames(page: Any, server: RunningServer) -> None:
    log_in(page, server, f"/issues/{issue_id(server, 'CardDeclinedError')}")
    assert page.locator("h1").first.inner_text() == "CardDeclinedError: Your card was declined ($100)."
    current = page.locator("table.source tr.current").last
    assert 'raise CardDeclinedError(f"Your card was declined (${amount}).")' in current.inner_text()
    folded = page.locator("details.lib-frames").first
    assert "opswatch" in folded.locator("summary").inner_text()
    assert not folded.locator("ol.stack").is_visible()
    folded.locator("summary").click()
    assert "opswatch/perf/_track.py" in folded.locator("ol.stack").inner_text()
    assert page.locator(".issue-head").inner_text().count("payment.stripe.charge") <= 1
    shoot(page, "issue")


def test_it_pauses_resumes_and_edits_a_cron_monitor(page: Any, server: RunningServer) -> None:
    log_in(page, server, "/crons/church-heartbeat")
    heading = page.locator("h1")
    settings = page.locator("table.settings")
    assert "last 1 run" in page.locator(".stats").inner_text()
    assert "1 run" in settings.inner_text() and "_seconds" not in settings.inner_text()
    page.get_by_role("button", name="Pause").click()
    expect(heading).to_contain_text("paused")
    assert page.url == f"{server.url}/crons/church-heartbeat"
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    assert "paused" not in heading.inner_text()

    page.get_by_text("Edit settings").click()
    page.get_by_label("Check-in margin").fill("soon")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Check-in margin: expected")
    page.get_by_label("Check-in margin").fill("5m")
    page.get_by_label("Max runtime").fill("2h")
    page.get_by_label("Failure threshold").fill("3")
    page.get_by_label("Schedule").fill("every 15 minutes")
    shoot(page, "cron-edit")
    page.get_by_role("button", name="Save").click()
    expect(settings).to_contain_text("5 min")
    shown = dict(row.split("\t") for row in settings.locator("tr").all_inner_texts())
    assert shown["Check-in margin"] == "5 min" and shown["Max runtime"] == "2 h"
    assert shown["Failure threshold"] == "3 runs" and shown["Schedule"] == "every 15 minutes"
    shoot(page, "cron")


def test_it_logs_out(page: Any, server: RunningServer) -> None:
    log_in(page, server)
    page.get_by_role("button", name="Log out", exact=True).click()
    page.wait_for_url(f"{server.url}/login")
    page.goto(f"{server.url}/issues")
    assert page.url.startswith(f"{server.url}/login")


def test_it_logs_out_everywhere(browser: Any, page: Any, server: RunningServer) -> None:
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        elsewhere = other.new_page()
        log_in(elsewhere, server, "/issues")
        assert elsewhere.url.startswith(f"{server.url}/issues")
        log_in(page, server)
        page.get_by_role("button", name="Log out everywhere").click()
        page.wait_for_url(f"{server.url}/login")
        elsewhere.goto(f"{server.url}/issues")
        assert elsewhere.url.startswith(f"{server.url}/login")
    finally:
        other.close()


class AttackerSite:
    """A page on another origin (another port of 127.0.0.1) that posts a form to the dashboard."""

    def __init__(self, action: str) -> None:
        body = (
            f'<form id="f" method="post" action="{action}"><input name="csrf" value="guess"></form>'
            "<script>document.getElementById('f').submit()</script>"
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> AttackerSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def test_it_refuses_a_form_that_another_site_posts(page: Any, server: RunningServer) -> None:
    target = issue_id(server, "CardDeclinedError")
    log_in(page, server)
    with AttackerSite(f"{server.url}/issues/{target}/resolve") as attacker:
        page.goto(attacker.url)
        page.wait_for_url(f"{server.url}/issues/{target}/resolve")
        assert "The form was sent from another site." in page.inner_text("main")
    with httpx.Client(timeout=30, trust_env=False) as http:
        issue = http.get(f"{server.url}/api/0/issues/{target}", headers=server.admin_headers).json()
    assert issue["status"] == "unresolved"


def test_it_draws_the_overview(page: Any, server: RunningServer, tmp_path: Path) -> None:
    log_in(page, server)
    shot = tmp_path / "overview.png"
    page.screenshot(path=str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1280, 900)
    assert len(data) > 20_000  # a drawn page, not a blank one
    shoot(page, "overview")


def test_it_creates_and_expires_a_silence_from_the_alerts_page(page: Any, server: RunningServer) -> None:
    log_in(page, server, "/alerts")
    assert page.get_by_role("heading", name="Alerts").is_visible()
    default = page.locator("table.rules tbody tr", has_text="high-error-rate")
    expect(default).to_contain_text("error_ratio over 5m")
    expect(default).to_contain_text("critical > 0.05")
    page.get_by_role("link", name="high-error-rate").click()
    page.wait_for_url(f"{server.url}/alerts/high-error-rate")
    assert page.locator("svg.signal").is_visible()
    assert page.locator("svg.signal line.threshold-critical").count() == 1

    page.get_by_text("New silence").click()
    assert page.get_by_label("Rule").input_value() == "high-error-rate"  # the page's rule, prefilled
    page.get_by_label("Label matchers").fill("service=~donations-.*")
    page.get_by_label("Duration").fill("90m")
    page.get_by_label("Author").fill("ana@example.org")
    page.get_by_label("Comment").fill("deploying the payment fix")
    page.get_by_role("button", name="Create silence").click()
    page.wait_for_url(f"{server.url}/alerts/high-error-rate")
    silence = page.locator("table.silences tbody tr", has_text="deploying the payment fix")
    expect(silence).to_contain_text("rule=high-error-rate")
    expect(silence).to_contain_text("service=~donations-.*")
    expect(silence).to_contain_text("active")
    expect(silence).to_contain_text("ana@example.org")
    expect(silence).to_contain_text("in 1 h")
    shoot(page, "alert-rule")

    page.goto(f"{server.url}/alerts")
    listed = page.locator("table.silences tbody tr", has_text="deploying the payment fix")
    expect(listed).to_contain_text("active")
    listed.get_by_role("button", name="Expire").click()
    page.wait_for_url(f"{server.url}/alerts")
    listed = page.locator("table.silences tbody tr", has_text="deploying the payment fix")
    expect(listed).to_contain_text("expired")
    assert listed.get_by_role("button", name="Expire").count() == 0
    with httpx.Client(timeout=30, trust_env=False) as http:
        items = http.get(f"{server.url}/api/0/silences", headers=server.admin_headers).json()["items"]
    assert [s["state"] for s in items if s["comment"] == "deploying the payment fix"] == ["expired"]
    shoot(page, "alerts")


def test_it_adds_a_rule_through_the_form_shows_a_bad_one_and_deletes_it(page: Any, server: RunningServer) -> None:
    log_in(page, server, "/alerts")
    page.get_by_text("New rule").click()
    rule = page.get_by_label("Rule (TOML)")
    rule.fill('name = "receipts-failing"\nsignal = "count"\nwindow = "10m"\ncritical = "over 3"\n')
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_role("alert")).to_contain_text("rule 'receipts-failing' critical: expected a comparison")
    assert 'critical = "over 3"' in page.get_by_label("Rule (TOML)").input_value()  # kept as typed
    page.get_by_label("Rule (TOML)").fill(
        'name = "receipts-failing"\nsignal = "count"\nwhere = "operation = \'receipts.send\'"\n'
        'window = "10m"\ncritical = "> 3"\n'
    )
    page.get_by_role("button", name="Add rule").click()
    page.wait_for_url(f"{server.url}/alerts/receipts-failing")
    assert page.get_by_role("heading", name="receipts-failing").is_visible()
    shoot(page, "alert-rule-added")

    page.goto(f"{server.url}/alerts")
    listed = page.locator("table.rules tbody tr", has_text="receipts-failing")
    expect(listed).to_contain_text("count over 10m")
    expect(listed).to_contain_text("critical > 3")
    expect(listed).to_contain_text("added here")
    listed.get_by_role("link", name="receipts-failing").click()
    page.wait_for_url(f"{server.url}/alerts/receipts-failing")
    page.get_by_role("button", name="Delete rule").click()
    page.wait_for_url(f"{server.url}/alerts")
    expect(page.locator("table.rules tbody tr", has_text="receipts-failing")).to_have_count(0)
    with httpx.Client(timeout=30, trust_env=False) as http:
        gone = http.get(f"{server.url}/api/0/rules/receipts-failing", headers=server.admin_headers)
    assert gone.status_code == 404
