"""The dashboard over HTTP: who may see it (token, cookie, CSRF), and what each page shows.

The cast: the donations service (the real SDK, shipping to a real server through its DSN) logs
donations and a card decline, times out on a report, runs the nightly job that fails, and writes a
message with markup in it. The server tells Slack (a local stand-in) about new issues and has a second
alert channel whose webhook answers 404, so the overview has a healthy channel and a broken one.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import opswatch
from dashboard_http import cookieless_client, csrf_of, login, signed_in
from opswatch.server.testing import RunningServer, running_server
from opswatch.server.ui import session
from slack_receiver import SlackReceiver

pytestmark = pytest.mark.slow


class CardDeclinedError(Exception):
    pass


class ReportTimeoutError(Exception):
    pass


class ReceiptMailerError(Exception):
    pass


def charge_card(amount: int) -> None:
    raise CardDeclinedError(f"card declined for ${amount}")


def build_giving_report() -> None:
    raise ReportTimeoutError("canceling statement due to statement timeout")


def send_receipt() -> None:
    raise ReceiptMailerError("the receipt mailer is down")


class BrokenWebhook:
    """A real HTTP server on 127.0.0.1 that answers every POST with 404 (a permanent delivery error)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "12")
                self.end_headers()
                self.wfile.write(b"no such hook")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/opswatch"

    def __enter__(self) -> BrokenWebhook:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def the_donations_service(server: RunningServer) -> None:
    """What the donations service sends, through the real SDK and the server's DSN."""
    spool = str(server.settings.data_dir / "sdk-spool")
    opswatch.init(dsn=server.dsn, service="donations-api", console=False, capture_stdlib=False, spool_dir=spool)
    log = opswatch.get_logger("donations")
    try:
        for index, church in enumerate(("grace", "grace", "st-marks")):
            opswatch.metrics.donation.completed(
                donation_id=f"d{index}", amount=50 + index * 25, currency="USD", method="card",
                recurring=False, church_id=church,
            )
        log.info("<script>alert('x')</script> in a message", operation="donations.note")
        try:
            charge_card(100)
        except CardDeclinedError as err:
            log.error("Payment failed", {"operation": "payment.stripe.charge", "amount": 100}, err)
        try:
            build_giving_report()
        except ReportTimeoutError:
            log.exception("Giving report failed", operation="reports.giving_summary")
        try:
            send_receipt()
        except ReceiptMailerError:
            log.exception("Receipt not sent", operation="receipts.send")
        with opswatch.cron_job("church-heartbeat", schedule="every 10 minutes"):
            pass
        with pytest.raises(RuntimeError), opswatch.cron_job("nightly-report", schedule="0 2 * * *"):
            raise RuntimeError("the report database is gone")
        assert opswatch.flush(10)
    finally:
        opswatch.shutdown()


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, slack: SlackReceiver) -> Iterator[RunningServer]:
    with BrokenWebhook() as broken, running_server(
        tmp_path_factory.mktemp("dashboard"), slack_webhook_url=slack.url, alert_webhook_url=broken.url
    ) as running:
        the_donations_service(running)
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """A client that keeps no cookies: each request says who it is (or not) itself."""
    with cookieless_client() as client:
        yield client


def issue_id(server: RunningServer, http: httpx.Client, title_part: str) -> int:
    items = http.get(f"{server.url}/api/0/issues?status=all", headers=server.admin_headers).json()["items"]
    return next(int(item["id"]) for item in items if title_part in item["title"])


def page(server: RunningServer, http: httpx.Client, path: str) -> httpx.Response:
    answer = http.get(f"{server.url}{path}", headers=server.admin_headers)
    assert answer.status_code == 200, answer.text
    return answer


# -- who may see it ------------------------------------------------------------------------------------


def test_it_sends_a_visitor_without_the_token_to_the_login_page(server: RunningServer, http: httpx.Client) -> None:
    answer = http.get(f"{server.url}/issues?status=all")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/issues%3Fstatus%3Dall"
    form = http.get(f"{server.url}{answer.headers['location']}")
    assert form.status_code == 200
    assert 'name="token"' in form.text and 'value="/issues?status=all"' in form.text


def test_it_answers_a_wrong_bearer_token_with_401(server: RunningServer, http: httpx.Client) -> None:
    answer = http.get(f"{server.url}/", headers={"Authorization": "Bearer not-the-token"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "Unresolved issues" not in answer.text


def test_it_logs_in_with_the_form_and_sets_an_httponly_strict_cookie(server: RunningServer, http: httpx.Client) -> None:
    answer = http.post(f"{server.url}/login", data={"token": server.admin_token, "next": "/crons"})
    assert answer.status_code == 303 and answer.headers["location"] == "/crons"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{session.COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert server.admin_token not in cookie
    value = answer.cookies[session.COOKIE]
    seen = http.get(f"{server.url}/crons", headers=signed_in(value))
    assert seen.status_code == 200 and "nightly-report" in seen.text


def test_it_refuses_a_wrong_token_at_the_login_form(server: RunningServer, http: httpx.Client) -> None:
    answer = http.post(f"{server.url}/login", data={"token": "guess", "next": "/"})
    assert answer.status_code == 401
    assert "not this server&#39;s admin token" in answer.text
    assert "set-cookie" not in answer.headers


def test_it_takes_the_token_in_the_url_once_and_redirects_without_it(server: RunningServer, http: httpx.Client) -> None:
    answer = http.get(f"{server.url}/issues", params={"status": "all", "token": server.admin_token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/issues?status=all"
    assert answer.headers["referrer-policy"] == "same-origin"
    cookie = answer.cookies[session.COOKIE]
    assert http.get(f"{server.url}/issues?status=all", headers=signed_in(cookie)).status_code == 200
    wrong = http.get(f"{server.url}/issues", params={"token": "guess"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers


def test_it_only_goes_on_to_local_paths_after_logging_in(server: RunningServer, http: httpx.Client) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        answer = http.post(f"{server.url}/login", data={"token": server.admin_token, "next": target})
        assert answer.headers["location"] == "/", target


def test_it_refuses_forged_and_expired_session_cookies(server: RunningServer, http: httpx.Client) -> None:
    now = time.time()
    forged = session.new_session("another-servers-token", now)
    expired = session.new_session(server.admin_token, now - session.SESSION_MAX_AGE - 60)
    for value in (forged, expired, "123.abc", "garbage"):
        answer = http.get(f"{server.url}/", headers=signed_in(value))
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), value


def test_it_refuses_a_change_without_the_csrf_token(server: RunningServer, http: httpx.Client) -> None:
    cookie = login(server, http)
    target = issue_id(server, http, "ReportTimeoutError")
    answer = http.post(f"{server.url}/issues/{target}/resolve", data={}, headers=signed_in(cookie))
    assert answer.status_code == 403 and "CSRF" in answer.text
    stale = http.post(
        f"{server.url}/issues/{target}/resolve", data={"csrf": "0" * 64}, headers=signed_in(cookie)
    )
    assert stale.status_code == 403
    issue = http.get(f"{server.url}/api/0/issues/{target}", headers=server.admin_headers).json()
    assert issue["status"] == "unresolved"


def test_it_refuses_a_form_sent_from_another_origin(server: RunningServer, http: httpx.Client) -> None:
    cookie = login(server, http)
    csrf = csrf_of(http.get(f"{server.url}/query", headers=signed_in(cookie)).text)
    answer = http.post(
        f"{server.url}/query",
        data={"csrf": csrf, "sql": "SELECT 1"},
        headers={**signed_in(cookie), "Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    own = http.post(f"{server.url}/query", data={"csrf": csrf, "sql": "SELECT 1 AS one"},
                    headers={**signed_in(cookie), "Origin": server.url})
    assert own.status_code == 200 and '<th class="num">one</th>' in own.text


def test_it_judges_a_form_by_sec_fetch_site_when_the_origin_is_null(server: RunningServer, http: httpx.Client) -> None:
    # Chromium sends ``Origin: null`` from pages with ``Referrer-Policy: no-referrer`` (the dashboard's
    # pages used to): ``Sec-Fetch-Site`` still tells a form of the dashboard's own from another site's.
    cookie = login(server, http)
    csrf = csrf_of(http.get(f"{server.url}/query", headers=signed_in(cookie)).text)

    def run(**headers: str) -> int:
        answer = http.post(f"{server.url}/query", data={"csrf": csrf, "sql": "SELECT 1 AS one"},
                           headers={**signed_in(cookie), **headers})
        return answer.status_code

    assert run(Origin="null", **{"Sec-Fetch-Site": "same-origin"}) == 200
    assert run(Origin="null", **{"Sec-Fetch-Site": "none"}) == 200  # started by the user, not a page
    assert run(Origin="null", **{"Sec-Fetch-Site": "cross-site"}) == 403
    assert run(Origin="null", **{"Sec-Fetch-Site": "same-site"}) == 403  # another port of the same host
    assert run(Origin="null") == 403
    assert run(Origin=server.url.replace("127.0.0.1", "localhost")) == 403
    assert run() == 200  # no browser headers at all: curl, with the session's CSRF token


def test_it_sends_a_referrer_only_to_its_own_origin(server: RunningServer, http: httpx.Client) -> None:
    assert page(server, http, "/").headers["referrer-policy"] == "same-origin"


def test_it_logs_out(server: RunningServer, http: httpx.Client) -> None:
    cookie = login(server, http)
    csrf = csrf_of(http.get(f"{server.url}/", headers=signed_in(cookie)).text)
    answer = http.post(f"{server.url}/logout", data={"csrf": csrf}, headers=signed_in(cookie))
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert f'{session.COOKIE}=""' in answer.headers["set-cookie"] or "Max-Age=0" in answer.headers["set-cookie"]


def test_it_sends_headers_that_keep_the_page_to_itself(server: RunningServer, http: httpx.Client) -> None:
    answer = page(server, http, "/")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-type"].startswith("text/html")


# -- the pages -----------------------------------------------------------------------------------------


def test_it_shows_counts_issues_failing_monitors_and_channel_health_on_the_overview(
    server: RunningServer, http: httpx.Client, slack: SlackReceiver
) -> None:
    slack.wait_for(1)
    deadline = time.monotonic() + 60
    html = page(server, http, "/").text
    while ("no such hook" not in html or "last success" not in html) and time.monotonic() < deadline:
        time.sleep(0.2)
        html = page(server, http, "/").text
    assert "Events per hour" in html and "Events per minute" in html
    errors = re.search(r"Errors, 24 h</span><span class=\"value\">(\d+)<", html)
    assert errors is not None and int(errors.group(1)) >= 3
    assert "CardDeclinedError: card declined for $100" in html
    assert 'href="/issues/' in html
    assert 'href="/crons/nightly-report"' in html and "church-heartbeat" not in html.split("Failing monitors")[1]
    assert "slack" in html and "webhook" in html
    assert "no such hook" in html  # the webhook's last error, as the channel recorded it
    assert "<svg class=\"chart\"" in html


def test_it_lists_issues_and_filters_them(server: RunningServer, http: httpx.Client) -> None:
    html = page(server, http, "/issues?status=all").text
    for title in ("CardDeclinedError", "ReportTimeoutError", "ReceiptMailerError"):
        assert title in html
    only = page(server, http, "/issues?status=all&query=type:CardDeclinedError").text
    assert "CardDeclinedError" in only and "ReportTimeoutError" not in only
    assert http.get(f"{server.url}/issues?status=bogus", headers=server.admin_headers).status_code == 400


def test_it_shows_an_issue_with_its_counts_actions_and_latest_stack(server: RunningServer, http: httpx.Client) -> None:
    target = issue_id(server, http, "CardDeclinedError")
    html = page(server, http, f"/issues/{target}").text
    assert "CardDeclinedError: card declined for $100" in html
    assert "charge_card" in html and "test_dashboard.py" in html  # frames of the latest event's stack
    assert f'action="/issues/{target}/resolve"' in html and f'action="/issues/{target}/ignore"' in html
    assert "payment.stripe.charge" in html
    assert "Last 24 hours" in html and "Last 30 days" in html


def test_it_serves_the_page_that_slack_links_to(server: RunningServer, http: httpx.Client, slack: SlackReceiver) -> None:
    messages = slack.wait_for(1)
    links = re.findall(r"https?://[^\s\"|>]+/issues/\d+", str(messages))
    assert links, messages
    assert links[0].startswith(server.url)
    assert http.get(links[0], headers=server.admin_headers).status_code == 200


def test_it_resolves_ignores_and_reopens_an_issue_from_its_page(server: RunningServer, http: httpx.Client) -> None:
    cookie = login(server, http)
    jar = signed_in(cookie)
    target = issue_id(server, http, "ReceiptMailerError")

    def act(action: str, **fields: str) -> str:
        csrf = csrf_of(http.get(f"{server.url}/issues/{target}", headers=jar).text)
        answer = http.post(f"{server.url}/issues/{target}/{action}", data={"csrf": csrf, **fields}, headers=jar)
        assert answer.status_code == 303 and answer.headers["location"] == f"/issues/{target}"
        return str(http.get(f"{server.url}/api/0/issues/{target}", headers=server.admin_headers).json()["status"])

    assert act("resolve") == "resolved"
    assert f'action="/issues/{target}/reopen"' in http.get(f"{server.url}/issues/{target}", headers=jar).text
    assert act("reopen") == "unresolved"
    assert act("ignore", duration="3600") == "ignored"
    assert act("reopen") == "unresolved"


def test_it_answers_404_for_an_unknown_issue_or_monitor(server: RunningServer, http: httpx.Client) -> None:
    assert http.get(f"{server.url}/issues/999999", headers=server.admin_headers).status_code == 404
    assert http.get(f"{server.url}/crons/no-such-job", headers=server.admin_headers).status_code == 404


def test_it_lists_cron_monitors_with_their_health(server: RunningServer, http: httpx.Client) -> None:
    html = page(server, http, "/crons").text
    assert "church-heartbeat" in html and "nightly-report" in html
    assert "every 10 minutes" in html and "0 2 * * *" in html
    assert "status-failing" in html or "status-error" in html
    assert "100%" in html  # the heartbeat's success rate


def test_it_shows_a_monitor_with_its_run_history(server: RunningServer, http: httpx.Client) -> None:
    html = page(server, http, "/crons/nightly-report").text
    assert "Run history" in html and "Next expected" in html and "Success rate" in html
    assert "badge status-error" in html  # the failed run
    assert "0%" in html


def test_it_filters_logs_by_level_operation_and_text(server: RunningServer, http: httpx.Client) -> None:
    errors = page(server, http, "/logs?level=error").text
    assert "Payment failed" in errors and "Donation" not in errors and "metrics.donation.completed" not in errors
    metrics = page(server, http, "/logs?operation=metrics.*").text
    assert "metrics.donation.completed" in metrics and "Payment failed" not in metrics
    found = page(server, http, "/logs?text=giving+report").text
    # (Messages, not the source lines that an error's frames carry in its details.)
    assert "<summary>Giving report failed</summary>" in found and "<summary>Payment failed</summary>" not in found
    assert http.get(f"{server.url}/logs?level=loud", headers=server.admin_headers).status_code == 400


def test_it_escapes_what_events_carry(server: RunningServer, http: httpx.Client) -> None:
    html = page(server, http, "/logs?operation=donations.note").text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<script>alert" not in html


def test_it_prefills_the_query_box_with_the_seed_donation_query_and_runs_it(
    server: RunningServer, http: httpx.Client
) -> None:
    html = page(server, http, "/query").text
    assert "metrics.donation.completed" in html and "churchId" in html
    sql = re.search(r'<textarea name="sql"[^>]*>(.*?)</textarea>', html, re.S)
    assert sql is not None
    answer = http.post(f"{server.url}/query", data={"sql": sql.group(1).replace("&#39;", "'")},
                       headers=server.admin_headers)
    assert answer.status_code == 200, answer.text
    rows = re.findall(r"<tr><td>([a-z-]+)</td><td class=\"num\">(\d+)</td><td class=\"num\">(\d+)</td></tr>", answer.text)
    assert rows == [("grace", "2", "125"), ("st-marks", "1", "100")]
    # Numbers align right under headers that align right with them; text stays left.
    assert '<th>churchId</th><th class="num">donation_count</th><th class="num">total_amount</th>' in answer.text


def test_it_shows_why_a_query_was_refused(server: RunningServer, http: httpx.Client) -> None:
    answer = http.post(f"{server.url}/query", data={"sql": "DROP TABLE logs"}, headers=server.admin_headers)
    assert answer.status_code == 400
    assert "only SELECT queries are allowed" in answer.text
    assert "DROP TABLE logs</textarea>" in answer.text


def test_it_serves_its_stylesheet_and_nothing_else_from_static(server: RunningServer, http: httpx.Client) -> None:
    css = http.get(f"{server.url}/static/opswatch.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert http.get(f"{server.url}/static/opswatch.js").status_code == 200
    for name in ("..%2F__init__.py", "missing.css", "%2Fetc%2Fpasswd"):
        assert http.get(f"{server.url}/static/{name}").status_code == 404, name


def test_it_shows_the_pages_of_a_server_without_events(tmp_path: Path, http: httpx.Client) -> None:
    with running_server(tmp_path) as empty:
        for path in ("/", "/issues", "/crons", "/logs", "/query"):
            answer = http.get(f"{empty.url}{path}", headers=empty.admin_headers)
            assert answer.status_code == 200, (path, answer.text)
        overview = http.get(f"{empty.url}/", headers=empty.admin_headers).text
        assert "No unresolved issues." in overview and "No alert channels configured" in overview


def test_it_takes_a_form_up_to_its_size_limit_and_refuses_a_byte_more(server: RunningServer, http: httpx.Client) -> None:
    from opswatch.server.api.ui import MAX_FORM_BYTES

    def post(size: int) -> httpx.Response:
        body = b"sql=" + b"x" * (size - 4)
        return http.post(f"{server.url}/query", content=body, headers={
            **server.admin_headers, "Content-Type": "application/x-www-form-urlencoded"})

    at_limit = post(MAX_FORM_BYTES)
    assert at_limit.status_code == 400 and "characters long" in at_limit.text  # read, then refused as SQL
    assert post(MAX_FORM_BYTES + 1).status_code == 413


def test_it_refuses_a_session_cookie_whose_time_is_not_ascii_digits() -> None:
    token = "the-admin-token"
    good = session.new_session(token, 1_000)
    assert session.session_valid(good, token, 1_000)
    assert not session.session_valid("²³." + good.partition(".")[2], token, 1_000)  # no ValueError
