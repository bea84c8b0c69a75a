"""The console's pages: sign-in, an agent's queue and case pages, opening a complaint,
the overdue board, reports and the auditors' page. Roles decide as in the API; a
branch token sees only its branch. Every value reaches the page escaped."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import partial
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from casework.machines.definition import done_states
from casework.storage import iso
from casework.storage.records import CaseQuery, CaseRecord
from casework.workflow.access.scope import NO_CUSTOMER, may_erase, opening_unit
from casework.workflow.api.security import report_period, visible_case, whole_database
from casework.workflow.clock import parse_instant
from casework.workflow.console import casepage
from casework.workflow.console.actions import actions
from casework.workflow.console.casepage import DASH
from casework.workflow.console.forms import Input, Vocabulary, field_input, form_data, local_instant
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
from casework.workflow.console.standing import Standing, queue_order, span, standing
from casework.workflow.console.texts import TEXTS, language
from casework.workflow.display.times import local
from casework.workflow.display.zones import zone_name
from casework.workflow.engine import Engine
from casework.workflow.errors import (
    CaseNotFound,
    CaseworkError,
    InvalidInput,
    NotAuthenticated,
    NotPermitted,
    ReadOnlyDatabase,
    StorageFailure,
)
from casework.workflow.labels import label, refusal
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
        lang=lang, t=texts, L=partial(label, lang), session=session,
        heading=f"{texts[heading]} {suffix}".strip(),
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
                return _page(
                    request,
                    "login.html",
                    "sign_in",
                    None,
                    status=401,
                    flash=refusal(_lang(request), err),
                )
            except NotPermitted as err:
                return _page(
                    request,
                    "login.html",
                    "sign_in",
                    session,
                    status=403,
                    flash=refusal(_lang(request), err),
                )
            except StorageFailure as err:  # the database refused: a page, never a 500
                return _page(
                    request,
                    "login.html",
                    "sign_in",
                    session,
                    status=503,
                    flash=refusal(_lang(request), err),
                )

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
        return _page(
            request, "login.html", "sign_in", None, status=401, flash=refusal(_lang(request), err)
        )
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


QUEUE_PAGE = 50
"""How many rows one page of the queue shows."""


def _zone_and_lang(request: Request) -> tuple[tzinfo, str]:
    return viewer_zone(request), _lang(request)


def _lang(request: Request) -> str:
    return language(request.cookies.get("lang"), request.headers.get("accept-language"))


def _units(engine: Engine, session: Session) -> tuple[str, ...] | None:
    """The branches whose cases the session sees (``None``: every branch)."""
    branch = session.principal.branch
    return None if branch is None else tuple(engine.settings.organisation.covered(branch))


def _countdown(lang: str, found: Standing, now: datetime) -> tuple[str, bool]:
    """How late ``found`` is, or how long is left to its breach (text, late)."""
    texts = TEXTS[lang]
    if found.late is not None:
        return texts["late_by"].format(span=span(found.late.total_seconds(), lang)), True
    if found.breach_at is not None:
        left = (found.breach_at - now).total_seconds()
        return texts["left"].format(span=span(left, lang)), False
    return texts["no_clock"], False


@router.get("/queue")
@_signed_in("write")
def queue(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """My open work (neither final nor resting): breached first, the latest first, then
    by the next breach; 50 a page, filtered by state, priority or lateness."""
    engine = _reader(request)
    lang = _lang(request)
    principal = session.principal
    asked = request.query_params
    state, priority = asked.get("state") or None, asked.get("priority") or None
    mine = engine.scoped(
        CaseQuery(owner=principal.actor, branch=principal.branch, state=state,
                  priority=priority, not_states=done_states(engine.registry))
    )  # fmt: skip
    now = engine.clock.now()
    ordered = queue_order(engine, engine.store.cases(mine), now)
    if asked.get("late"):
        ordered = [s for s in ordered if s.late is not None]
    page_no = int(asked["page"]) if asked.get("page", "").isdigit() else 1
    page_no = max(1, min(page_no, 1 + (len(ordered) - 1) // QUEUE_PAGE if ordered else 1))
    shown = ordered[(page_no - 1) * QUEUE_PAGE : page_no * QUEUE_PAGE]
    rows = []
    for found in shown:
        case = found.case
        machine = engine.registry.get(case.machine, case.machine_version)
        words, late = _countdown(lang, found, now)
        rows.append({
            "case": case, "countdown": words, "late": late,
            "due": None if found.breach_at is None else iso(found.breach_at),
            "clock": label(lang, "clock", found.clock) if found.clock else "",
            "state": label(lang, "state", case.state, machine),
            "category": label(lang, "category", case.category, machine),
            "priority": label(lang, "priority", case.priority, machine),
        })  # fmt: skip
    states = sorted({s for d in engine.registry for s in d.states if d.is_open(s)})
    chosen = {"state": state or "", "priority": priority or "", "late": asked.get("late", "")}
    return _page(
        request, "queue.html", "queue", session, rows=rows, total=len(ordered),
        page_no=page_no, pages=max(1, -(-len(ordered) // QUEUE_PAGE)),
        states=[(s, label(lang, "state", s)) for s in states],
        priorities=[(p, label(lang, "priority", p)) for p in engine.settings.priorities],
        chosen=chosen, request_query=lambda n: urlencode({**chosen, "page": n}),
    )  # fmt: skip


def _case_page(
    request: Request,
    session: Session,
    case_id: str,
    *,
    refused: tuple[str, str] | None = None,
    kept: Mapping[str, str] | None = None,
) -> Response:
    """A case's page; ``refused`` (event, reason) puts the reason beside that event's
    form, which keeps the values ``kept`` that were typed."""
    engine = _engine(request)
    zone, lang = _zone_and_lang(request)
    case = visible_case(engine, session.principal, case_id)
    machine = engine.registry.get(case.machine, case.machine_version)
    events = engine.history(case.id)
    now = engine.clock.now()
    found = standing(engine, case, now)
    countdown, late = _countdown(lang, found, now)
    explained = engine.explain_sla(case.id)
    clocks = []
    for clock in explained["clocks"]:
        if not clock.get("cycle"):
            continue
        target = clock.get("target_s") or 0
        used = clock.get("used_s") or 0
        outcome = clock.get("outcome")
        clocks.append(
            {
                "name": label(lang, "clock", clock["clock"], machine), "used": span(used, lang),
                "target": span(target, lang),
                "share": round(100 * used / target) if target else 0,
                "due": clock.get("target_at") if clock.get("outcome") == "open" else None,
                "outcome": clock.get("outcome"),
                "outcome_label": TEXTS[lang][outcome] if outcome in ("met", "breached") else "",
            }
        )  # fmt: skip
    vocabulary = Vocabulary(
        engine.settings.channels, engine.settings.categories, engine.settings.priorities,
        tuple((p.id, p.name) for p in engine.store.partners()),
    )  # fmt: skip
    menu = casepage.menu(lang, machine, case, actions(engine, case), vocabulary)
    rows = casepage.timeline(lang, machine, events, zone)
    linked = sorted({f.href for r in rows for f in r.fields if f.href and "/files/" not in f.href})
    files = [e for e in events if e.event == "attach"]
    return _page(
        request, "case.html", "case", session, suffix=case.id[:8],
        case=case, state_label=label(lang, "state", case.state, machine),
        countdown=countdown, late=late,
        breach_at=None if found.breach_at is None else iso(found.breach_at),
        clocks=clocks, timers=[
            {**t, "label": label(lang, "timer", t["name"], machine)}
            for t in case.sla.get("timers", ())
        ],
        chain_ok=engine.verify(case.id).ok, menu=menu, rows=rows, linked=linked,
        files=files, erased=casepage.erased(case),
        panel=casepage.panel(lang, machine, case, engine.settings.warranty, now),
        refused=refused, kept=kept or {},
        meta=[(label(lang, "field", n, machine), v) for n, v in (
            ("owner", case.owner), ("branch", case.branch or DASH),
            ("channel", label(lang, "channel", case.channel, machine)),
            ("category", label(lang, "category", case.category, machine)),
            ("level", f"L{case.escalation_level}"),
        )],
    )  # fmt: skip


@router.get("/cases/{case_id}")
@_signed_in("read")
def case_page(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """A case (its id or a unique prefix): the state and the time to the breach, the
    customer and product, the next step first, the timeline in labels and local times."""
    engine = _engine(request)
    asked = request.path_params["case_id"]
    try:
        found = engine.resolve(asked, session.principal.branch)
        if found != asked:
            return RedirectResponse(f"/cases/{found}", status_code=303)
        return _case_page(request, session, found)
    except (CaseNotFound, InvalidInput) as err:
        return _search_page(request, session, asked, status=404,
                            flash=refusal(_lang(request), err))  # fmt: skip


@router.get("/cases/{case_id}/files/{digest}")
@_signed_in("read")
def attached(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """A file the case attached, as a download (only through a case the viewer sees)."""
    engine = _engine(request)
    case_id, digest = request.path_params["case_id"], request.path_params["digest"]
    try:
        case = visible_case(engine, session.principal, case_id)
    except CaseworkError as err:
        return _search_page(request, session, "", status=404, flash=refusal(_lang(request), err))
    named = [e for e in engine.history(case.id) if e.event == "attach"]
    found = next((e for e in named if e.data.get("digest") == digest), None)
    content = None if found is None else engine.store.attachment(digest)
    if found is None or content is None:
        flash = TEXTS[_lang(request)]["no_results"]
        return _search_page(request, session, "", status=404, flash=flash)
    name = str(found.data.get("name") or digest[:12])
    disposition = f"attachment; filename*=UTF-8''{quote(name)}"
    return Response(
        content, media_type="application/octet-stream",
        headers={**PAGE_HEADERS, "Content-Disposition": disposition},
    )  # fmt: skip


@router.post("/cases/{case_id}/events")
@_signed_in("write")
def fire(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Record an event from its form (times read in the viewer's zone); a refusal is
    said beside that form, in the page's language, the typed values kept."""
    engine = _engine(request)
    zone, lang = _zone_and_lang(request)
    case_id = request.path_params["case_id"]
    event = form.get("event", "")
    machine = None
    try:
        case = visible_case(engine, session.principal, case_id)
        machine = engine.registry.get(case.machine, case.machine_version)
        vocabulary = Vocabulary((), (), (), ())
        shown = casepage.menu(lang, machine, case, actions(engine, case), vocabulary).get(event)
        version = form.get("version", "")
        engine.fire(
            case_id, event, actor=session.principal.actor,
            data=form_data(form, "data.", () if shown is None else shown.inputs, zone),
            note=form.get("note") or None,
            expected_version=int(version) if version.isdigit() else None,
            within=session.principal.branch, role=session.principal.role,
        )  # fmt: skip
    except CaseworkError as err:
        # The page again, the refusal beside the form (200: the page itself is fine).
        reason = refusal(lang, err, machine)
        return _case_page(request, session, case_id, refused=(event, reason), kept=form)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


def _open_page(request: Request, session: Session, **extra: Any) -> Response:
    engine = _engine(request)
    lang = _lang(request)
    settings = engine.settings
    definition = engine.registry.get(settings.default_machine, None)
    vocabulary = Vocabulary(settings.channels, settings.categories, settings.priorities, ())
    attributes = []
    for name, spec in definition.attributes.items():
        found = field_input(lang, definition, "open", name, (), vocabulary)
        kind = (
            found.kind
            if found.kind == "select"
            else {"integer": "number"}.get(spec.kind, spec.kind if spec.kind == "date" else "text")
        )
        attributes.append(Input(name, kind, found.label, (("", DASH), *found.choices)))
    return _page(
        request, "open.html", "open", session,
        channels=[(c, label(lang, "channel", c)) for c in settings.channels],
        categories=[(c, label(lang, "category", c)) for c in settings.categories],
        priorities=[(p, label(lang, "priority", p)) for p in settings.priorities],
        attributes=attributes, kept=extra.pop("kept", {}), refused=extra.pop("refused", None),
        **extra,
    )  # fmt: skip


@router.get("/open")
@_signed_in("write")
def open_form(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """The complaint intake form."""
    return _open_page(request, session)


@router.post("/open")
@_signed_in("write")
def open_case(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Open the complaint (a back-filled received time read in the viewer's zone); its
    page next. A refusal keeps what was typed and says why beside the form."""
    engine = _engine(request)
    principal = session.principal
    zone, lang = _zone_and_lang(request)
    try:
        received = form.get("received_at", "").strip()
        at = (
            parse_instant(local_instant(received, zone, "received_at"), "received_at")
            if received
            else None
        )
        case = engine.open_case(
            customer=form.get("customer", ""), summary=form.get("summary", ""),
            channel=form.get("channel") or None, category=form.get("category") or None,
            priority=form.get("priority") or "normal", contact=form.get("contact") or None,
            branch=opening_unit(principal, form.get("branch")), actor=principal.actor,
            received_at=at,
            attributes=_data(form, "attr.") or None, within=principal.branch,
        )  # fmt: skip
    except CaseworkError as err:
        return _open_page(request, session, refused=refusal(lang, err), kept=form)
    return RedirectResponse(f"/cases/{case.id}", status_code=303)


def _data(form: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """Form fields ``prefix.NAME`` as data; whole numbers as numbers, blanks left out."""
    values: dict[str, Any] = {}
    for key, value in form.items():
        if key.startswith(prefix) and value.strip():
            text = value.strip()
            values[key.removeprefix(prefix)] = int(text) if text.lstrip("-").isdigit() else text
    return values


SEARCH_ROWS = 50
"""The most cases a search shows."""


def _listed(request: Request, cases: Sequence[CaseRecord]) -> list[dict[str, Any]]:
    """Cases as list rows: labels, the countdown, the masked contact."""
    engine = _reader(request)
    lang = _lang(request)
    now = engine.clock.now()
    rows = []
    for case in cases:
        machine = engine.registry.get(case.machine, case.machine_version)
        found = standing(engine, case, now)
        open_work = machine.is_open(case.state)
        words, late = _countdown(lang, found, now) if open_work else ("", False)
        rows.append({
            "case": case, "countdown": words, "late": late,
            "state": label(lang, "state", case.state, machine),
            "category": label(lang, "category", case.category, machine),
            "contact": casepage.masked(case.contact),
        })  # fmt: skip
    return rows


def _search_page(
    request: Request, session: Session, asked: str, *, status: int = 200,
    flash: str | None = None,
) -> Response:  # fmt: skip
    engine = _reader(request)
    found = engine.store.find_cases(asked, SEARCH_ROWS, _units(engine, session)) if asked else []
    return _page(request, "search.html", "search", session, status=status, flash=flash,
                 asked=asked, rows=_listed(request, found))  # fmt: skip


@router.get("/search")
@_signed_in("read")
def search(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Find cases by a case number or its first characters, a customer, a phone or
    contact, a serial or an order number; one case found opens it."""
    asked = (request.query_params.get("q") or "").strip()
    if asked:
        found = _reader(request).store.find_cases(asked, 2, _units(_reader(request), session))
        if len(found) == 1:
            return RedirectResponse(f"/cases/{found[0].id}", status_code=303)
    return _search_page(request, session, asked)


@router.get("/customers/{customer}")
@_signed_in("read")
def customer_page(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Every case of a customer (repeats visible), the latest first."""
    engine = _reader(request)
    customer = request.path_params["customer"]
    query = engine.scoped(CaseQuery(customer=customer, branch=session.principal.branch))
    found = sorted(engine.store.cases(query), key=lambda c: c.received_at, reverse=True)
    return _page(request, "customer.html", "customer_cases", session, suffix=customer,
                 customer=customer, rows=_listed(request, found))  # fmt: skip


@router.get("/erase")
@_signed_in("admin")
def erase_form(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """An administrator names a customer and sees each of their cases (branch, received
    date, masked contact) before erasing: the right person, confirmed."""
    engine = _engine(request)
    customer = (request.query_params.get("customer") or "").strip()
    rows: list[dict[str, Any]] = []
    flash = None
    if customer:
        named = engine.store.cases(CaseQuery(customer=customer))
        try:
            may_erase(session.principal, named)
            if not named:
                raise InvalidInput(NO_CUSTOMER, field="customer")
        except CaseworkError as err:
            flash, named = refusal(_lang(request), err), []
        rows = _listed(request, sorted(named, key=lambda c: c.received_at))
    contacts = len({r["contact"] for r in rows})
    return _page(request, "erase.html", "erase", session, customer=customer, rows=rows,
                 contacts=contacts, flash=flash, done=None)  # fmt: skip


@router.post("/erase")
@_signed_in("admin")
def erase(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Erase the confirmed customer (:meth:`Engine.erase`)."""
    engine = _engine(request)
    customer = form.get("customer", "").strip()
    try:
        may_erase(session.principal, engine.store.cases(CaseQuery(customer=customer)))
        done = engine.erase(customer, actor=session.principal.actor,
                            reason=form.get("reason", "").strip())  # fmt: skip
    except CaseworkError as err:
        return _page(request, "erase.html", "erase", session, customer=customer, rows=[],
                     contacts=0, flash=refusal(_lang(request), err), done=None)  # fmt: skip
    cases = done.get("cases") or []
    count = len(cases) if isinstance(cases, list) else cases
    words = TEXTS[_lang(request)]["erase_done"].format(cases=count)
    return _page(request, "erase.html", "erase", session, customer="", rows=[], contacts=0,
                 done=words)  # fmt: skip


@router.get("/overdue")
@_signed_in("read")
def overdue(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Every clock past its target, the latest first: level, owner, branch, how late."""
    engine = _reader(request)
    lang = _lang(request)
    rows = []
    for o in engine.overdue():
        machine = engine.registry.get(o.case.machine, o.case.machine_version)
        if not session.principal.sees(o.case) or not machine.is_open(o.case.state):
            continue
        rows.append({
            "case": o.case, "clock": label(lang, "clock", o.clock, machine),
            "late": span(o.late_by.total_seconds(), lang),
            "state": label(lang, "state", o.case.state, machine),
            "erased": casepage.erased(o.case),
        })  # fmt: skip
    compliance = []
    if session.principal.may("replay"):
        from casework.workflow.reports.business import Period, sla_report

        now = engine.clock.now()
        zone = viewer_zone(request)
        midnight = datetime.combine(local(now, zone).date(), time(), tzinfo=zone)
        for name, start in (("today", midnight), ("week", now - timedelta(days=7))):
            period = Period(start, now + timedelta(seconds=1), zone, session.principal.branch)
            compliance.append((name, sla_report(engine, period)))
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
    viewer's zone; "this month" and "last 7 days" one click away), for one branch or
    all a token sees."""
    from casework.workflow.reports.business import complaints_report, sla_report

    query = request.query_params
    start, end = query.get("from", ""), query.get("to", "")
    asked = {k: query.get(k, "") for k in ("from", "to", "month", "last", "branch")}
    chosen = urlencode({k: v for k, v in asked.items() if v})
    engine = _reader(request)
    month = f"{local(engine.clock.now(), viewer_zone(request)):%Y-%m}"
    units = _units(engine, session)
    org = engine.settings.organisation
    every = {unit for branch, stores in org.branches.items() for unit in (branch, *stores)}
    branches = sorted(every if units is None else units)
    values: dict[str, Any] = {"start": start, "end": end, "month": month, "chosen": chosen,
              "branch": asked["branch"], "branches": branches}  # fmt: skip
    report = complaints = None
    if start or asked["month"] or asked["last"]:
        try:
            period = _period(request, session)
            report = sla_report(engine, period)
            complaints = complaints_report(engine, period, None)
        except CaseworkError as err:
            return _page(request, "reports.html", "reports", session, report=None,
                         complaints=None, flash=refusal(_lang(request), err), **values)  # fmt: skip
    return _page(request, "reports.html", "reports", session, report=report,
                 complaints=complaints, **values)  # fmt: skip


def _no_period() -> dict[str, Any]:
    return {"start": "", "end": "", "month": "", "chosen": "", "branch": "", "branches": []}


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
                         complaints=None, **_no_period())  # fmt: skip
    except CaseworkError as err:
        flash = refusal(_lang(request), err)
        return _page(request, "reports.html", "reports", session, flash=flash, report=None,
                     complaints=None, **_no_period())  # fmt: skip
    except ImportError:
        flash = "charts need the reports extra: pip install 'casework[reports]'"
        return _page(request, "reports.html", "reports", session, flash=flash, report=None,
                     complaints=None, **_no_period())  # fmt: skip
    return HTMLResponse(_framed(request, html, name), headers=PAGE_HEADERS)


FITTING = (
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<style>body{max-width:100%;overflow-x:hidden;box-sizing:border-box}"
    "svg,img{max-width:100%;height:auto}table{display:block;max-width:100%;overflow-x:auto}"
    "p.back{margin:.4rem 0 1rem}p.back a{color:#1d5fd1}</style>"
)
"""What a report page drawn for a file gets when the console serves it: the screen's
width (charts and tables shrink or scroll inside, the page never sideways)."""


def _framed(request: Request, html: str, name: str) -> str:
    """A report page as the console serves it: fitting the screen, with a way back to
    the reports and the "this month" and "last 7 days" presets."""
    texts = TEXTS[_lang(request)]
    query = request.query_params
    branch = query.get("branch")
    keep = f"&amp;branch={quote(branch)}" if branch else ""
    back = urlencode({k: v for k, v in query.items() if v})
    month = f"{local(_engine(request).clock.now(), viewer_zone(request)):%Y-%m}"
    nav = (
        f'<p class="back"><a href="/reports?{back}">\u2190 {texts["back"]}</a> · '
        f'<a href="/reports/{name}.html?month={month}{keep}">{texts["this_month"]}</a> · '
        f'<a href="/reports/{name}.html?last=7d{keep}">{texts["last_7_days"]}</a></p>'
    )
    if 'name="viewport"' not in html:
        html = html.replace("</head>", FITTING + "</head>", 1)
    start = html.find("<body")
    if start < 0:
        return html
    close = html.index(">", start) + 1
    return html[:close] + nav + html[close:]


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
        return _tokens_page(request, session, flash=refusal(_lang(request), err), status=403)
    except CaseworkError as err:
        return _tokens_page(request, session, flash=refusal(_lang(request), err))
    return _tokens_page(request, session, made=made.token)


@router.get("/audit")
@_signed_in("audit")
def audit(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Verification and export, for auditors."""
    return _page(request, "audit.html", "audit", session, report=None)


@router.post("/audit")
@_signed_in("audit")
def verify(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Verify one case (its id or a unique prefix), or every case."""
    engine = _reader(request)
    try:
        if form.get("all"):
            whole_database(session.principal, "verify")
            report = engine.verify()
        else:
            asked = engine.resolve(form.get("case", "").strip(), session.principal.branch)
            report = engine.verify(visible_case(engine, session.principal, asked).id)
    except CaseworkError as err:
        return _page(
            request, "audit.html", "audit", session, flash=refusal(_lang(request), err), report=None
        )
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
        return _page(
            request, "audit.html", "audit", session, flash=refusal(_lang(request), err), report=None
        )
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
