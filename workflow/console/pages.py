"""The console's pages: sign-in, an agent's queue and case pages, opening a complaint,
the overdue board, reports and the auditors' page. Roles decide as in the API; a
branch token sees only its branch. Every value reaches the page escaped."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from urllib.parse import parse_qs, unquote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from casework.storage import iso
from casework.storage.records import CaseQuery
from casework.workflow.access.scope import opening_unit
from casework.workflow.api.security import report_period, visible_case, whole_database
from casework.workflow.clock import parse_instant
from casework.workflow.console.actions import actions
from casework.workflow.console.sessions import (
    COOKIE,
    LASTS,
    LOGIN_COOKIE,
    Session,
    check_csrf,
    check_login,
    login_csrf,
    session_of,
    sign_in,
    sign_out,
)
from casework.workflow.console.texts import TEXTS, language
from casework.workflow.display.times import local
from casework.workflow.display.zones import zone_name
from casework.workflow.durations import hours_minutes
from casework.workflow.engine import Engine
from casework.workflow.errors import (
    CaseworkError,
    InvalidInput,
    NotAuthenticated,
    NotPermitted,
    ReadOnlyDatabase,
    StorageFailure,
)
from casework.workflow.storage_boundary import storage_errors

router = APIRouter(include_in_schema=False)
_pages = jinja2.Environment(
    loader=jinja2.PackageLoader("casework.workflow.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
HIDDEN_DATA = frozenset({"clock", "cycle", "level", "due_at", "late_by_s", "ended_by"})
"""Event data the timeline leaves out (the engine's own bookkeeping)."""


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _reader(request: Request) -> Engine:
    """What the queue, the overdue board, the reports and the audit read from: the
    standby of ``serve --read-db`` where there is one (a case's own page reads the
    primary, which has the write its form just made)."""
    state = request.app.state
    engine: Engine = state.read_engine or state.engine
    return engine


def _page(
    request: Request,
    template: str,
    heading: str,
    session: Session | None,
    *,
    status: int = 200,
    flash: str | None = None,
    suffix: str = "",
    **values: Any,
) -> HTMLResponse:
    lang = language(request.cookies.get("lang"), request.headers.get("accept-language"))
    texts = TEXTS[lang]
    principal = None if session is None else session.principal
    token = login_csrf() if template == "login.html" else None
    if token is not None:
        values["login_csrf"] = token
    html = _pages.get_template(template).render(
        lang=lang, t=texts, heading=f"{texts[heading]} {suffix}".strip(), session=session,
        flash=flash, now=iso(_engine(request).clock.now()),
        may_write=principal is not None and principal.may("write"),
        may_replay=principal is not None and principal.may("replay"),
        may_audit=principal is not None and principal.may("audit"),
        may_admin=principal is not None and principal.may("admin"),
        worker_banner=_worker_banner(request, texts) if principal and principal.may("replay")
        else None, **values,
    )  # fmt: skip
    answer = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
    if token is not None:
        answer.set_cookie(
            LOGIN_COOKIE, token, max_age=int(LASTS.total_seconds()), httponly=True,
            samesite="strict", secure=request.url.scheme == "https", path="/login",
        )  # fmt: skip
    return answer


def _worker_banner(request: Request, texts: dict[str, str]) -> str | None:
    """What supervisors must know when the SLA worker stopped (deadlines wait)."""
    engine = _reader(request)
    limit: float = request.app.state.heartbeat_s
    try:
        beat = engine.store.latest_beat()
    except Exception:  # the page says what it can; readiness reports the database
        return None
    if beat is None:
        return texts["worker_none"]
    age = (engine.clock.now() - beat.beat_at).total_seconds()
    if age <= limit:
        return None
    return texts["worker_stale"].format(minutes=max(1, round(age / 60)))


CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
"""Scripts and styles from this server only (the bars' widths are inline styles)."""
PAGE_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": CSP}
"""What every console page (and every report page drawn for it) is served with."""


def _session(request: Request) -> Session | None:
    try:
        engine = _engine(request)
        return session_of(
            engine.store, request.cookies.get(COOKIE), engine.clock.now(),
            engine.settings.organisation,
        )  # fmt: skip
    except NotAuthenticated:
        return None


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


async def _form(request: Request) -> dict[str, str]:
    """A URL-encoded form's fields (the last value of each)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _signed_in(action: str) -> Callable[[Callable[..., Response]], Any]:
    """Run a page for a signed-in session whose role may do ``action`` (403 page if not),
    off the event loop."""

    def wrap(page: Callable[..., Response]) -> Any:
        async def run(request: Request) -> Response:
            session = await run_in_threadpool(_session, request)
            if session is None:
                return _to_login()
            form = await _form(request) if request.method == "POST" else {}
            try:
                if request.method == "POST":
                    check_csrf(session, form.get("csrf"))
                session.principal.require(action)
                with storage_errors():
                    return await run_in_threadpool(page, request, session, form)
            except NotAuthenticated as err:
                return _page(request, "login.html", "sign_in", None, status=401, flash=str(err))
            except NotPermitted as err:
                return _page(request, "login.html", "sign_in", session, status=403, flash=str(err))
            except StorageFailure as err:  # the database refused: a page, never a 500
                return _page(request, "login.html", "sign_in", session, status=503, flash=str(err))

        run.__name__ = page.__name__
        return run

    return wrap


@router.get("/")
async def home(request: Request) -> Response:
    """Writers start at their queue, everyone else at the overdue board."""
    session = await run_in_threadpool(_session, request)
    if session is None:
        return _to_login()
    return RedirectResponse("/queue" if session.principal.may("write") else "/overdue", 303)


@router.get("/favicon.ico")
async def favicon() -> Response:
    """The icon, for pages that do not name one (the reports drawn for files)."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The sign-in form."""
    return _page(request, "login.html", "sign_in", None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Exchange a token for a session cookie: only from this server's own sign-in form
    (its pre-session CSRF token, no other site's ``Origin``)."""
    form = await _form(request)
    engine = _engine(request)
    lang = language(request.cookies.get("lang"), request.headers.get("accept-language"))
    try:
        check_login(
            request.cookies.get(LOGIN_COOKIE), form.get("csrf"), request.headers.get("origin"),
            request.headers.get("sec-fetch-site"),
            (request.headers.get("host"), request.headers.get("x-forwarded-host")),
        )  # fmt: skip
        with storage_errors():
            cookie, _ = await run_in_threadpool(
                sign_in, engine.store, form.get("token", ""), engine.clock.now(),
                engine.settings.organisation,
            )  # fmt: skip
    except NotPermitted:
        flash = TEXTS[lang]["login_expired"]
        return _page(request, "login.html", "sign_in", None, status=403, flash=flash)
    except NotAuthenticated as err:
        return _page(request, "login.html", "sign_in", None, status=401, flash=str(err))
    except StorageFailure as err:
        read_only = isinstance(err, ReadOnlyDatabase)
        flash = TEXTS[lang]["database_read_only"] if read_only else str(err)
        return _page(request, "login.html", "sign_in", None, status=503, flash=flash)
    answer = RedirectResponse("/", status_code=303)
    answer.delete_cookie(LOGIN_COOKIE, path="/login")
    answer.set_cookie(
        COOKIE, cookie, max_age=int(LASTS.total_seconds()), httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path="/",
    )  # fmt: skip
    return answer


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session."""
    form = await _form(request)
    session = await run_in_threadpool(_session, request)
    if session is not None:
        check_csrf(session, form.get("csrf"))
        engine = _engine(request)
        sign_out(engine.store, request.cookies.get(COOKIE), engine.clock.now())
    answer = _to_login()
    answer.delete_cookie(COOKIE, path="/")
    return answer


@router.get("/lang/{code}")
async def switch_language(code: str, request: Request) -> Response:
    """Remember the language chosen with the switch."""
    back = request.headers.get("referer") or "/"
    answer = RedirectResponse(back if back.startswith(str(request.base_url)) else "/", 303)
    if code in TEXTS:
        answer.set_cookie("lang", code, max_age=365 * 86400, samesite="strict", path="/")
    return answer


QUEUE_ROWS = 200
"""The most cases the queue shows at once (the count says how many there are)."""


@router.get("/queue")
@_signed_in("write")
def queue(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """My open cases, the next deadline first."""
    engine = _reader(request)
    principal = session.principal
    mine = engine.scoped(
        CaseQuery(owner=principal.actor, branch=principal.branch, not_states=engine.closed_states())
    )
    found = engine.store.cases_by_due(mine, QUEUE_ROWS)
    total = engine.store.count_cases(mine)
    rows = [{"case": case, "due": None if due is None else iso(due)} for case, due in found]
    return _page(request, "queue.html", "queue", session, rows=rows, total=total)


def _case_page(
    request: Request, session: Session, case_id: str, *, flash: str | None = None
) -> Response:
    engine = _engine(request)
    case = visible_case(engine, session.principal, case_id)
    events = engine.history(case.id)
    explained = engine.explain_sla(case.id)
    clocks = []
    for clock in explained["clocks"]:
        if not clock.get("cycle"):
            continue
        target = clock.get("target_s") or 0
        used = clock.get("used_s") or 0
        nxt = clock.get("next") or {}
        clocks.append(
            {
                "name": clock["clock"], "used": hours_minutes(used),
                "target": hours_minutes(target),
                "share": round(100 * used / target) if target else 0,
                "due": nxt.get("due_at"), "outcome": clock.get("outcome"),
            }
        )  # fmt: skip
    return _page(
        request, "case.html", "case", session, flash=flash, suffix=case.id,
        case=case, events=[e.to_json() for e in events], clocks=clocks,
        timers=case.sla.get("timers", ()),
        chain_ok=engine.verify(case.id).ok, actions=actions(engine, case), hidden=HIDDEN_DATA,
    )  # fmt: skip


@router.get("/cases/{case_id}")
@_signed_in("read")
def case_page(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """A case: details, SLA clocks, what may be done now, the verified timeline."""
    return _case_page(request, session, request.path_params["case_id"])


def _data(form: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """Form fields ``prefix.NAME`` as data; whole numbers as numbers, blanks left out."""
    values: dict[str, Any] = {}
    for key, value in form.items():
        if key.startswith(prefix) and value.strip():
            text = value.strip()
            values[key.removeprefix(prefix)] = int(text) if text.lstrip("-").isdigit() else text
    return values


@router.post("/cases/{case_id}/events")
@_signed_in("write")
def fire(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Record an event from its form; a refusal is explained on the case page."""
    engine = _engine(request)
    case_id = request.path_params["case_id"]
    try:
        visible_case(engine, session.principal, case_id)
        version = form.get("version", "")
        engine.fire(
            case_id, form.get("event", ""), actor=session.principal.actor,
            data=_data(form, "data."), note=form.get("note") or None,
            expected_version=int(version) if version.isdigit() else None,
            within=session.principal.branch, role=session.principal.role,
        )  # fmt: skip
    except CaseworkError as err:
        # The page again, the refusal in place (200: the page itself is fine).
        return _case_page(request, session, case_id, flash=str(err))
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


def _open_page(request: Request, session: Session, **extra: Any) -> Response:
    engine = _engine(request)
    settings = engine.settings
    definition = engine.registry.get(settings.default_machine, None)
    return _page(
        request, "open.html", "open", session, channels=settings.channels,
        categories=settings.categories, priorities=settings.priorities,
        attributes=[(n, spec.kind) for n, spec in definition.attributes.items()], **extra,
    )  # fmt: skip


@router.get("/open")
@_signed_in("write")
def open_form(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """The complaint intake form."""
    return _open_page(request, session)


@router.post("/open")
@_signed_in("write")
def open_case(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Open the complaint; its page next."""
    engine = _engine(request)
    principal = session.principal
    try:
        received = form.get("received_at", "").strip()
        case = engine.open_case(
            customer=form.get("customer", ""), summary=form.get("summary", ""),
            channel=form.get("channel") or None, category=form.get("category") or None,
            priority=form.get("priority") or "normal", contact=form.get("contact") or None,
            branch=opening_unit(principal, form.get("branch")), actor=principal.actor,
            received_at=parse_instant(received, "received_at") if received else None,
            attributes=_data(form, "attr.") or None, within=principal.branch,
        )  # fmt: skip
    except CaseworkError as err:
        return _open_page(request, session, flash=str(err))
    return RedirectResponse(f"/cases/{case.id}", status_code=303)


@router.get("/overdue")
@_signed_in("read")
def overdue(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Every clock past its target, the latest first: level, owner, branch, how late."""
    engine = _reader(request)
    rows = [
        {"case": o.case, "clock": o.clock, "late": hours_minutes(o.late_by.total_seconds())}
        for o in engine.overdue()
        if session.principal.sees(o.case)
    ]
    compliance = []
    if session.principal.may("replay"):
        from casework.workflow.reports.business import Period, sla_report

        now = engine.clock.now()
        zone = viewer_zone(request)
        midnight = datetime.combine(local(now, zone).date(), time(), tzinfo=zone)
        for label, start in (("today", midnight), ("week", now - timedelta(days=7))):
            period = Period(start, now + timedelta(seconds=1), zone, session.principal.branch)
            compliance.append((label, sla_report(engine, period)))
    return _page(request, "overdue.html", "overdue", session, rows=rows, compliance=compliance)


def viewer_zone(request: Request) -> tzinfo:
    """The zone the viewer's browser reported (the script keeps it in a cookie), else
    the configured display zone, else UTC: "today" and report days are cut in it."""
    from casework.workflow.display.zones import zone_named

    cookie = unquote(request.cookies.get(ZONE_COOKIE) or "")
    for name in (cookie, _engine(request).settings.display_timezone):
        if name:
            try:
                return zone_named(name, "zone")
            except InvalidInput:
                continue
    return UTC


ZONE_COOKIE = "casework_tz"


def _asked(request: Request) -> dict[str, str | None]:
    query = request.query_params
    return {"start": query.get("from") or None, "end": query.get("to") or None,
            "month": query.get("month") or None, "last": query.get("last") or None}  # fmt: skip


def _period(request: Request, session: Session) -> Any:
    return report_period(
        _engine(request), session.principal, _asked(request),
        zone_name(viewer_zone(request)), request.query_params.get("branch"),
    )  # fmt: skip


@router.get("/reports")
@_signed_in("replay")
def reports(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """SLA compliance per clock and the complaint structure for a period (days in the
    viewer's zone); a branch token sees its branch."""
    from casework.workflow.reports.business import complaints_report, sla_report

    start, end = request.query_params.get("from", ""), request.query_params.get("to", "")
    report = complaints = None
    if start:
        try:
            period = _period(request, session)
            report = sla_report(_reader(request), period)
            complaints = complaints_report(_reader(request), period, None)
        except CaseworkError as err:
            return _page(request, "reports.html", "reports", session, flash=str(err),
                         report=None, complaints=None, start=start, end=end)  # fmt: skip
    return _page(request, "reports.html", "reports", session, report=report,
                 complaints=complaints, start=start, end=end)  # fmt: skip


@router.get("/reports/{name}.html")
@_signed_in("replay")
def report_page(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """The SLA or complaint report with its charts, as the ``report`` command draws it."""
    from casework.workflow.reports import business

    name = request.path_params["name"]
    try:
        period = _period(request, session)
        if name == "sla":
            html = business.sla_page(business.sla_report(_reader(request), period))
        elif name == "complaints":
            report = business.complaints_report(_reader(request), period, None)
            html = business.complaints_page(report)
        else:
            return _page(request, "reports.html", "reports", session, status=404, report=None,
                         complaints=None, start="", end="")  # fmt: skip
    except CaseworkError as err:
        return _page(request, "reports.html", "reports", session, flash=str(err), report=None,
                     complaints=None, start="", end="")  # fmt: skip
    except ImportError:
        flash = "charts need the reports extra: pip install 'casework[reports]'"
        return _page(request, "reports.html", "reports", session, flash=flash, report=None,
                     complaints=None, start="", end="")  # fmt: skip
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get("/tokens")
@_signed_in("admin")
def tokens(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Administrators make and revoke the tokens people sign in with."""
    return _tokens_page(request, session)


def _tokens_page(request: Request, session: Session, **extra: Any) -> Response:
    from casework.workflow.access.scope import powers, visible_tokens
    from casework.workflow.access.tokens import ROLES

    principal = session.principal
    found = [t.to_json() for t in visible_tokens(principal, _engine(request).store.tokens())]
    roles = [r for r in ROLES if powers(r) <= powers(principal.role)]
    return _page(request, "tokens.html", "tokens", session, tokens=found, roles=roles,
                 made=extra.pop("made", None), own_branch=principal.branch, **extra)  # fmt: skip


@router.post("/tokens")
@_signed_in("admin")
def make_token(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Make a token (shown this once) or revoke one; a branch administrator, of its
    branch only (:mod:`workflow.access.scope`)."""
    from casework.workflow.access.scope import may_mint, may_revoke
    from casework.workflow.access.tokens import issue, revoke

    engine = _engine(request)
    try:
        if form.get("revoke"):
            may_revoke(session.principal, engine.store.tokens(), form["revoke"])
            revoke(engine.store, form["revoke"], engine.clock.now())
            request.app.state.principals.forget(form["revoke"])
            return _tokens_page(request, session)
        branch = form.get("branch") or None
        may_mint(session.principal, form.get("role", ""), branch)
        made = issue(engine.store, form.get("actor", ""), form.get("role", ""), branch,
                     engine.clock.now())  # fmt: skip
    except NotPermitted as err:
        return _tokens_page(request, session, flash=str(err), status=403)
    except CaseworkError as err:
        return _tokens_page(request, session, flash=str(err))
    return _tokens_page(request, session, made=made.token)


@router.get("/audit")
@_signed_in("audit")
def audit(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Verification and export, for auditors."""
    return _page(request, "audit.html", "audit", session, report=None)


@router.post("/audit")
@_signed_in("audit")
def verify(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Verify one case, or every case."""
    engine = _reader(request)
    try:
        if form.get("all"):
            whole_database(session.principal, "verify")
            report = engine.verify()
        else:
            report = engine.verify(visible_case(engine, session.principal, form.get("case", "")).id)
    except CaseworkError as err:
        return _page(request, "audit.html", "audit", session, flash=str(err), report=None)
    return _page(request, "audit.html", "audit", session, report=report.to_json())


@router.post("/audit/checkpoint")
@_signed_in("audit")
def verify_checkpoint(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Check a pasted checkpoint against a pasted keyring, and the history it signed."""
    engine = _engine(request)
    try:
        whole_database(session.principal, "verify")
        from casework.workflow.audit.checkpoints import (
            Checkpoint,
            check_checkpoint,
            keyring_from_text,
        )

        try:
            document = json.loads(form.get("checkpoint", ""))
        except ValueError:
            raise InvalidInput("the checkpoint is not JSON", field="checkpoint") from None
        checkpoint = Checkpoint.from_json(document, "the checkpoint")
        keys = keyring_from_text(form.get("keyring", ""), "the keyring")
        report = check_checkpoint(engine, checkpoint, keys)
    except CaseworkError as err:
        return _page(request, "audit.html", "audit", session, flash=str(err), report=None)
    except ImportError:
        flash = "checkpoints need the signing extra: pip install 'casework[signing]'"
        return _page(request, "audit.html", "audit", session, flash=flash, report=None)
    return _page(request, "audit.html", "audit", session, report=report.to_json())


@router.get("/audit/export")
@_signed_in("audit")
def export(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """The whole export as a download."""
    from casework.workflow.api.audit import export_stream

    whole_database(session.principal, "export")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")  # noqa: DTZ005 - a file name, local on purpose
    return StreamingResponse(
        export_stream(_reader(request), None, None), media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="casework-{stamp}.jsonl"'},
    )  # fmt: skip
