"""The dashboard's routes: ``/``, ``/issues``, ``/crons``, ``/logs``, ``/traces``, ``/performance``,
``/query``, ``/alerts``, login and static files.

Every page needs the admin token (``opswatch.server.ui.session`` says how it may be given); without
it a browser is sent to ``/login``. Changes (resolve, ignore, reopen an issue; pause, resume, edit a
monitor; run a query; add, edit, delete a rule; create, expire a silence; log out) are POSTs with a
CSRF token from a page of the same origin. Handlers only authenticate, parse and render; the data comes
from ``opswatch.server.ui.overview`` and ``opswatch.server.ui.pages``, the templates from ``ui/templates``.
"""

from __future__ import annotations

import datetime
import mimetypes
import urllib.parse
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, RedirectResponse, Response

from .. import limits
from ..auth import get_context
from ..issues.lifecycle import IssueNotFound
from ..monitors import config as monitor_config
from ..monitors.errors import AmbiguousMonitor, MonitorConfigError, UnknownMonitor
from ..rules.service import UnknownRule
from ..rules.silences import SilenceError, UnknownSilence
from ..state import sessions
from ..store.base import QueryError
from ..throttle import client_address, throttle_for
from ..ui import STATIC_DIR, alerts, cron_settings, pages, performance, session, traces
from ..ui import rule_form as rule_form_ui
from ..ui.overview import overview as gather_overview
from ..ui.render import page, secure
from ..ui.services import issue_service, monitor_service

router = APIRouter(include_in_schema=False)

#: Largest form body: the longest SQL, URL-encoded, plus the other fields.
MAX_FORM_BYTES: Final = 3 * limits.QUERY_MAX_SQL_CHARS + 4096
#: The static files, by name (anything else is 404: no paths reach the file system).
_STATIC: Final = {path.name: path for path in STATIC_DIR.iterdir() if path.is_file()}
_NAV: Final = (
    ("/", "Overview"),
    ("/issues", "Issues"),
    ("/crons", "Crons"),
    ("/logs", "Logs"),
    ("/traces", "Traces"),
    ("/performance", "Performance"),
    ("/query", "Query"),
    ("/alerts", "Alerts"),
)
_BAD_TOKEN: Final = "That is not this server's admin token."


# -- authentication --------------------------------------------------------------------------------


def _token(request: Request) -> str:
    return get_context(request).settings.admin_token


def _now(request: Request) -> float:
    return get_context(request).now().timestamp()


def _authenticate(request: Request) -> session.Viewer | Response:
    """The viewer, or the answer to give instead: 401 for a wrong Bearer token, a redirect that sets
    the cookie for a good ``?token=``, the login page otherwise; 429 for a client with too many
    failures (``opswatch.server.throttle``)."""
    token = _token(request)
    header = request.headers.get("authorization")
    if header is not None:
        throttled = _throttled(request)
        if throttled is not None:
            return throttled
        if session.token_matches(session.bearer(header), token):
            return session.Viewer("bearer", session.csrf_token(token, None))
        _failed(request)
        response = _error_page(request, 401, "The Authorization header does not carry the admin token.")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    cookie = request.cookies.get(session.COOKIE)
    if _session_active(request, cookie):
        return session.Viewer("cookie", session.csrf_token(token, cookie))
    given = request.query_params.get("token")
    if given is not None and request.method == "GET":
        throttled = _throttled(request)
        if throttled is not None:
            return throttled
        if not session.token_matches(given, token):
            _failed(request)
            return _login_page(request, _here(request, drop="token"), _BAD_TOKEN, 401)
        return _logged_in(request, _here(request, drop="token"))
    target = urllib.parse.quote(_here(request), safe="/")
    return secure(RedirectResponse(f"/login?next={target}", status_code=303))


def _session_active(request: Request, cookie: str | None) -> bool:
    """A signed, unexpired session cookie that the server issued and nobody logged out."""
    if cookie is None or not session.session_valid(cookie, _token(request), _now(request)):
        return False
    ctx = get_context(request)
    return sessions.active(ctx.engine, cookie, ctx.now())


def _throttled(request: Request) -> Response | None:
    """429 with Retry-After for a client with too many failed logins or tokens, else None."""
    wait = throttle_for(get_context(request).extras).retry_after(client_address(request))
    if wait is None:
        return None
    response = _error_page(request, 429, f"Too many failed attempts: try again in {wait} s.")
    response.headers["Retry-After"] = str(wait)
    return response


def _failed(request: Request) -> None:
    throttle_for(get_context(request).extras).failed(client_address(request))


def _here(request: Request, drop: str | None = None) -> str:
    """This request's path and query, without the ``drop`` parameter."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != drop]
    encoded = urllib.parse.urlencode(query)
    return request.url.path + (f"?{encoded}" if encoded else "")


def _logged_in(request: Request, target: str) -> Response:
    """A redirect to ``target`` that sets a new session cookie (remembered server-side)."""
    response = RedirectResponse(session.safe_next(target), status_code=303)
    cookie = session.new_session(_token(request), _now(request))
    ctx = get_context(request)
    sessions.record(ctx.engine, cookie, ctx.now(), session.SESSION_MAX_AGE)
    response.set_cookie(
        session.COOKIE,
        cookie,
        max_age=session.SESSION_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return secure(response)


async def _form(request: Request) -> dict[str, str] | Response:
    """The URL-encoded form of a POST (first value of each field), or the error answer."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return _error_page(request, 413, f"The form is over {MAX_FORM_BYTES} bytes.")
    if not body:
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return _error_page(request, 415, "Expected a form (application/x-www-form-urlencoded).")
    try:
        fields = urllib.parse.parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return _error_page(request, 400, "The form could not be read.")
    return {name: values[0] for name, values in fields.items()}


def _same_origin(request: Request) -> bool:
    """False when the browser says the form came from another site (``session.same_origin``); the
    server's public URL counts as its own host too (a proxy that rewrites ``Host``)."""
    own = (
        request.headers.get("host", ""),
        urllib.parse.urlsplit(get_context(request).settings.base_url).netloc,
    )
    return session.same_origin(request.headers.get("origin"), request.headers.get("sec-fetch-site"), own)


async def _change(request: Request) -> tuple[session.Viewer, dict[str, str]] | Response:
    """Authenticate a state-changing POST: the viewer, the same origin and the CSRF token."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if not _same_origin(request):
        return _error_page(request, 403, "The form was sent from another site.")
    if viewer.via == "cookie" and not session.csrf_valid(
        form.get("csrf"), _token(request), request.cookies.get(session.COOKIE)
    ):
        return _error_page(request, 403, "The form's CSRF token is missing or stale: reload and retry.")
    return viewer, form


# -- rendering ---------------------------------------------------------------------------------------


def _render(request: Request, viewer: session.Viewer | None, name: str, active: str, code: int = 200,
            **values: Any) -> Response:
    """The template ``name`` as an answer with HTTP status ``code``."""
    return page(name, {"viewer": viewer, "active": active, "nav": _NAV, "now": _now(request), **values}, code)


def _error_page(
    request: Request, status: int, message: str, viewer: session.Viewer | None = None
) -> Response:
    return _render(request, viewer, "error.html", "", status, status=status, message=message)


def _login_page(request: Request, target: str, error: str | None = None, status: int = 200) -> Response:
    return _render(request, None, "login.html", "", status, next=session.safe_next(target), error=error)


# -- login -------------------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    """The login form (or straight on, for someone already logged in)."""
    if _session_active(request, request.cookies.get(session.COOKIE)):
        return secure(RedirectResponse(session.safe_next(next), status_code=303))
    return _login_page(request, next)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token from the form; on success set the session cookie and go on."""
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if not _same_origin(request):
        return _error_page(request, 403, "The form was sent from another site.")
    target = session.safe_next(form.get("next"))
    throttled = _throttled(request)
    if throttled is not None:
        return throttled
    if not session.token_matches(form.get("token"), _token(request)):
        _failed(request)
        return _login_page(request, target, _BAD_TOKEN, 401)
    return _logged_in(request, target)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End this session (the cookie no longer works, wherever it was copied), or with ``everywhere``
    set, every session of the dashboard."""
    checked = await _change(request)
    if isinstance(checked, Response):
        return checked
    _viewer, form = checked
    ctx = get_context(request)
    cookie = request.cookies.get(session.COOKIE)
    if form.get("everywhere"):
        await run_in_threadpool(sessions.revoke_all, ctx.engine)
    elif cookie:
        await run_in_threadpool(sessions.revoke, ctx.engine, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(session.COOKIE, path="/", httponly=True, samesite="strict")
    return secure(response)


# -- pages -------------------------------------------------------------------------------------------


@router.get("/")
def overview_page(request: Request) -> Response:
    """Events per hour and minute, errors, unresolved issues, failing monitors, alert channel health."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    data = gather_overview(get_context(request))
    return _render(request, viewer, "overview.html", "Overview", data=data)


@router.get("/issues")
def issues_page(request: Request, status: str = "unresolved", query: str = "", offset: int = 0) -> Response:
    """The issue list with status and text filters."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    if status not in pages.ISSUE_STATUSES:
        return _error_page(request, 400, f"status: expected one of {', '.join(pages.ISSUE_STATUSES)}", viewer)
    try:
        listing = pages.issue_list(
            get_context(request), status=status, query=query[:500], offset=max(offset, 0)
        )
    except pages.NotInstalled as err:
        return _error_page(request, 404, str(err), viewer)
    except ValueError as err:
        return _error_page(request, 400, str(err), viewer)
    return _render(request, viewer, "issues.html", "Issues", listing=listing, status=status, query=query,
                   offset=max(offset, 0), statuses=pages.ISSUE_STATUSES, per_page=pages.ISSUES_PER_PAGE)


@router.get("/issues/{issue_id:int}")
def issue_page(request: Request, issue_id: int) -> Response:
    """One issue: title, culprit, counts, status actions, the latest event with its stack."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    try:
        issue = pages.issue_detail(get_context(request), issue_id)
    except LookupError as err:
        return _error_page(request, 404, str(err), viewer)
    return _render(request, viewer, "issue.html", "Issues", issue=issue, ignore_choices=pages.IGNORE_CHOICES)


@router.post("/issues/{issue_id:int}/{action}")
async def issue_action(request: Request, issue_id: int, action: str) -> Response:
    """Resolve, reopen or ignore an issue, then show it again."""
    checked = await _change(request)
    if isinstance(checked, Response):
        return checked
    viewer, form = checked
    if action not in ("resolve", "reopen", "ignore"):
        return _error_page(request, 404, f"no action {action[:40]!r}: resolve, reopen or ignore", viewer)
    service = issue_service(get_context(request))
    if service is None:
        return _error_page(request, 404, "issues are not installed on this server", viewer)
    actor = "dashboard"
    try:
        if action == "resolve":
            await run_in_threadpool(service.resolve, issue_id, actor)
        elif action == "reopen":
            await run_in_threadpool(service.reopen, issue_id, actor)
        else:
            seconds = form.get("duration", "")
            if seconds and not (seconds.isascii() and seconds.isdigit()):
                return _error_page(request, 400, "duration: expected seconds", viewer)
            duration = datetime.timedelta(seconds=int(seconds)) if seconds else None
            await run_in_threadpool(lambda: service.ignore(issue_id, actor, duration=duration))
    except IssueNotFound as err:
        return _error_page(request, 404, str(err), viewer)
    except ValueError as err:
        return _error_page(request, 400, str(err), viewer)
    return secure(RedirectResponse(f"/issues/{issue_id}", status_code=303))


@router.get("/crons")
def crons_page(request: Request) -> Response:
    """Every cron monitor: status, next expected check-in, success rate, average duration."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    try:
        monitors = pages.monitor_list(get_context(request))
    except pages.NotInstalled as err:
        return _error_page(request, 404, str(err), viewer)
    return _render(request, viewer, "crons.html", "Crons", monitors=monitors)


@router.get("/crons/{slug}")
def cron_page(request: Request, slug: str, project: int | None = None) -> Response:
    """One monitor: its health, settings (with pause, resume and edit forms), runs and state changes."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    return _cron(request, viewer, slug, project)


def _cron(request: Request, viewer: session.Viewer, slug: str, project: int | None, code: int = 200,
          form_error: str | None = None, form: dict[str, str] | None = None) -> Response:
    try:
        monitor = pages.monitor_detail(get_context(request), slug, project)
    except LookupError as err:
        return _error_page(request, 404, str(err), viewer)
    values = cron_settings.form_values(monitor["settings"])
    if form is not None:  # a refused edit keeps what was typed
        values.update({name: form[name] for name, *_ in cron_settings.FIELDS if name in form})
    return _render(request, viewer, "cron.html", "Crons", code, monitor=monitor,
                   settings=cron_settings.shown(monitor["settings"]), fields=cron_settings.FIELDS,
                   values=values, form_error=form_error)


@router.post("/crons/{slug}/{action}")
async def cron_action(request: Request, slug: str, action: str, project: int | None = None) -> Response:
    """Pause, resume or edit a monitor (through the monitor service, as the API does), then show it."""
    checked = await _change(request)
    if isinstance(checked, Response):
        return checked
    viewer, form = checked
    if action not in ("pause", "resume", "edit"):
        return _error_page(request, 404, f"no action {action[:40]!r}: pause, resume or edit", viewer)
    service = monitor_service(get_context(request))
    if service is None:
        return _error_page(request, 404, "cron monitoring is not installed on this server", viewer)
    try:
        entry = await run_in_threadpool(service.find, slug, project)
        if action == "pause":
            await run_in_threadpool(service.pause, entry)
        elif action == "resume":
            await run_in_threadpool(service.resume, entry)
        else:
            sent = cron_settings.changes(form, monitor_config.effective(entry.config))
            if sent:
                await run_in_threadpool(service.update, entry, sent)
    except MonitorConfigError as err:
        return _cron(request, viewer, slug, project, 400, cron_settings.problem(err), form)
    except (UnknownMonitor, AmbiguousMonitor) as err:
        return _error_page(request, 404, str(err), viewer)
    where = f"/crons/{urllib.parse.quote(slug, safe='')}"
    if project is not None:
        where += f"?project={project}"
    return secure(RedirectResponse(where, status_code=303))


@router.get("/logs")
def logs_page(
    request: Request, level: str = "", operation: str = "", text: str = "", limit: str = ""
) -> Response:
    """The latest events, filtered by level, operation and text."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    try:
        filters = pages.LogFilters.parse(level, operation, text, limit)
    except ValueError as err:
        return _error_page(request, 400, str(err), viewer)
    lines = pages.recent_events(get_context(request), filters)
    return _render(request, viewer, "logs.html", "Logs", lines=lines, filters=filters,
                   levels=("trace", "debug", "info", "warn", "error", "fatal"))


@router.get("/traces")
def traces_page(request: Request, service: str = "", operation: str = "", min_ms: str = "", status: str = "",
                range: str = "") -> Response:
    """Traces by service, operation, least duration, status and time range, slowest first."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    try:
        filters = traces.TraceFilters.parse(service, operation, min_ms, status, range)
        found = traces.search(get_context(request), filters)
    except ValueError as err:
        return _error_page(request, 400, str(err), viewer)
    except QueryError as err:
        return _error_page(request, 503, f"the trace search failed: {err}", viewer)
    return _render(request, viewer, "traces.html", "Traces", traces=found, filters=filters,
                   statuses=traces.STATUSES, ranges=traces.RANGES, limit=traces.SEARCH_ROWS)


@router.get("/traces/{trace_id}")
def trace_page(request: Request, trace_id: str) -> Response:
    """One trace as a waterfall, with its log records on the same time axis."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    try:
        trace = traces.trace_detail(get_context(request), trace_id)
    except ValueError as err:
        return _error_page(request, 400, str(err), viewer)
    except LookupError as err:
        return _error_page(request, 404, str(err), viewer)
    except QueryError as err:
        return _error_page(request, 503, f"the trace could not be read: {err}", viewer)
    return _render(request, viewer, "trace.html", "Traces", trace=trace)


@router.get("/performance")
def performance_page(request: Request, service: str = "", range: str = "") -> Response:
    """Per operation: rate, error rate, p50/p95/p99 and the p95 over time against the seed's thresholds."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    try:
        filters = performance.PerfFilters.parse(service, range)
        found = performance.operations(get_context(request), filters)
        critical = performance.critical_records(get_context(request), filters)
    except ValueError as err:
        return _error_page(request, 400, str(err), viewer)
    except QueryError as err:
        return _error_page(request, 503, f"the performance numbers could not be read: {err}", viewer)
    return _render(request, viewer, "performance.html", "Performance", operations=found, filters=filters,
                   ranges=traces.RANGES, limit=performance.MAX_OPERATIONS, critical=critical,
                   critical_limit=performance.MAX_CRITICAL)


@router.get("/query")
def query_page(request: Request) -> Response:
    """The SQL box, prefilled with the seed's donation query."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    return _render(request, viewer, "query.html", "Query", sql=pages.DEFAULT_SQL, answer=None)


@router.post("/query")
async def run_query_page(request: Request) -> Response:
    """Run the SQL from the box through the read-only query layer and show the table."""
    checked = await _change(request)
    if isinstance(checked, Response):
        return checked
    viewer, form = checked
    sql = form.get("sql", "")
    answer = await run_in_threadpool(pages.run_sql, get_context(request), sql)
    status = 200 if answer.error is None else 400
    return _render(request, viewer, "query.html", "Query", status, sql=sql, answer=answer)


@router.get("/alerts")
def alerts_page(request: Request) -> Response:
    """Every rule with its state, the firing and pending alerts, the history, the silences and their form."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    return _alerts(request, viewer, None)


@router.get("/alerts/{name}")
def alert_page(request: Request, name: str) -> Response:
    """One rule: its state, its signal as a chart with thresholds and firing periods, alerts, silences."""
    viewer = _authenticate(request)
    if isinstance(viewer, Response):
        return viewer
    return _alerts(request, viewer, name)


def _alerts(request: Request, viewer: session.Viewer, name: str | None, code: int = 200,
            form_error: str | None = None, form: dict[str, str] | None = None,
            rule_form: dict[str, Any] | None = None) -> Response:
    ctx = get_context(request)
    try:
        data = alerts.alert_list(ctx) if name is None else alerts.alert_detail(ctx, name)
        editing = {} if name is None else rule_form_ui.editing(ctx, name, data["source"])
    except LookupError as err:
        return _error_page(request, 404, str(err), viewer)
    values = {"rule": "" if name is None else name, "duration": "2h", **(form or {})}
    edit = {"example": rule_form_ui.EXAMPLE, **editing, **(rule_form or {})}
    return _render(request, viewer, "alerts.html" if name is None else "alert.html", "Alerts", code,
                   data=data, form=values, form_error=form_error, duration_hint=alerts.DURATION_HINT,
                   rule_form=edit)


def _back(form: dict[str, str]) -> str:
    """The Alerts page a silence form came from (``/alerts`` or a rule's page)."""
    target = session.safe_next(form.get("next"))
    own = target == "/alerts" or (target.startswith("/alerts/") and ".." not in target)
    return target if own else "/alerts"


@router.post("/alerts/silences")
async def create_silence(request: Request) -> Response:
    """Create a silence from the form (through the silences service, as the API does), then go back."""
    checked = await _change(request)
    if isinstance(checked, Response):
        return checked
    viewer, form = checked
    back = _back(form)
    name = urllib.parse.unquote(back[len("/alerts/"):]) if back.startswith("/alerts/") else None
    try:
        runtime = alerts.runtime(get_context(request))
        now = runtime.service.now()
        silence = alerts.silence_from_form(form, now)
        await run_in_threadpool(lambda: runtime.dispatcher.silences.create(now=now, **silence))
    except pages.NotInstalled as err:
        return _error_page(request, 404, str(err), viewer)
    except SilenceError as err:
        return _alerts(request, viewer, name, 400, str(err), form)
    return secure(RedirectResponse(back, status_code=303))


@router.post("/alerts/rules")
async def save_rule(request: Request) -> Response:
    """Create a rule from the form's TOML (or replace the API rule being edited), then show its page;
    a bad rule shows the form again with the reason and the text as typed."""
    checked = await _change(request)
    if isinstance(checked, Response):
        return checked
    viewer, form = checked
    editing = form.get("mode") == "edit" and bool(form.get("name"))
    try:
        ctx = get_context(request)
        now = alerts.runtime(ctx).service.now()
        name = await run_in_threadpool(rule_form_ui.save, ctx, form, now)
    except pages.NotInstalled as err:
        return _error_page(request, 404, str(err), viewer)
    except rule_form_ui.RuleFormError as err:
        typed = {"error": str(err), "toml": form.get("toml", ""), "open": True}
        return _alerts(request, viewer, form["name"] if editing else None, err.status, rule_form=typed)
    return secure(RedirectResponse(f"/alerts/{urllib.parse.quote(name, safe='')}", status_code=303))


@router.post("/alerts/rules/{name}/delete")
async def delete_rule(request: Request, name: str) -> Response:
    """Delete an API rule, then go back to the Alerts page."""
    checked = await _change(request)
    if isinstance(checked, Response):
        return checked
    viewer, _form = checked
    try:
        ctx = get_context(request)
        await run_in_threadpool(rule_form_ui.delete, ctx, name, alerts.runtime(ctx).service.now())
    except (pages.NotInstalled, UnknownRule) as err:
        return _error_page(request, 404, str(err), viewer)
    except rule_form_ui.RuleFormError as err:
        return _alerts(request, viewer, name, err.status, rule_form={"error": str(err)})
    return secure(RedirectResponse("/alerts", status_code=303))


@router.post("/alerts/silences/{silence_id:int}/expire")
async def expire_silence(request: Request, silence_id: int) -> Response:
    """End a silence now, then go back to the page it was expired from."""
    checked = await _change(request)
    if isinstance(checked, Response):
        return checked
    viewer, form = checked
    try:
        runtime = alerts.runtime(get_context(request))
        await run_in_threadpool(runtime.dispatcher.silences.expire, silence_id, runtime.service.now())
    except (pages.NotInstalled, UnknownSilence) as err:
        return _error_page(request, 404, str(err), viewer)
    return secure(RedirectResponse(_back(form), status_code=303))


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The dashboard's CSS and JS (no login needed: nothing in them is private)."""
    path = _STATIC.get(name)
    if path is None:
        return Response("not found", status_code=404, media_type="text/plain")
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(path, media_type=kind, headers={"Cache-Control": "public, max-age=300"})
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
