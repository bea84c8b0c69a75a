"""What every console page shares: the router, rendering a page in the viewer's
language with the worker's banner, the session and the role a page needs (off the
event loop), the viewer's zone and language, the branches a session sees."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, tzinfo
from functools import partial
from typing import Any
from urllib.parse import parse_qs, unquote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from casework.storage import iso
from casework.workflow.console.sessions import (
    COOKIE,
    LASTS,
    LOGIN_COOKIE,
    Session,
    check_csrf,
    login_csrf,
    session_of,
)
from casework.workflow.console.texts import TEXTS, language
from casework.workflow.engine import Engine
from casework.workflow.errors import (
    InvalidInput,
    NotAuthenticated,
    NotPermitted,
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


def engine_of(request: Request) -> Engine:
    """The engine the console serves (the primary)."""
    engine: Engine = request.app.state.engine
    return engine


def reader_of(request: Request) -> Engine:
    """What the queue, the overdue board, the reports and the audit read from: the
    standby of ``serve --read-db`` where there is one (a case's own page reads the
    primary, which has the write its form just made)."""
    state = request.app.state
    engine: Engine = state.read_engine or state.engine
    return engine


def render(
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
    """A page of ``template`` in the viewer's language, under ``heading`` (a word of
    :data:`TEXTS`, ``suffix`` after it), with the worker's banner for supervisors."""
    lang = language(request.cookies.get("lang"), request.headers.get("accept-language"))
    texts = TEXTS[lang]
    principal = None if session is None else session.principal
    token = login_csrf() if template == "login.html" else None
    if token is not None:
        values["login_csrf"] = token
    html = _pages.get_template(template).render(
        lang=lang, t=texts, L=partial(label, lang), session=session,
        heading=f"{texts[heading]} {suffix}".strip(),
        flash=flash, now=iso(engine_of(request).clock.now()),
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
    engine = reader_of(request)
    limit: float = request.app.state.heartbeat_s
    try:
        age = engine.worker_age()
    except Exception:  # the page says what it can; readiness reports the database
        return None
    if age is None:
        return texts["worker_none"]
    if age <= limit:
        return None
    return texts["worker_stale"].format(minutes=max(1, round(age / 60)))


CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
"""Scripts and styles from this server only (the bars' widths are inline styles)."""
PAGE_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": CSP}
"""What every console page (and every report page drawn for it) is served with."""


def current_session(request: Request) -> Session | None:
    """The live session of the request's cookie, or ``None``."""
    try:
        engine = engine_of(request)
        return session_of(
            engine.context.store, request.cookies.get(COOKIE), engine.clock.now(),
            engine.settings.organisation,
        )  # fmt: skip
    except NotAuthenticated:
        return None


def to_login() -> RedirectResponse:
    """To the sign-in page."""
    return RedirectResponse("/login", status_code=303)


async def form_fields(request: Request) -> dict[str, str]:
    """A URL-encoded form's fields (the last value of each)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


CSRF_HEADER = "x-csrf-token"
"""Where a file upload (a body of its own, no form fields) carries the session's CSRF
token."""


def _is_file(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("application/octet-stream")


def signed_in(action: str) -> Callable[[Callable[..., Response]], Any]:
    """Run a page for a signed-in session whose role may do ``action`` (403 page if not),
    off the event loop."""

    def wrap(page: Callable[..., Response]) -> Any:
        async def run(request: Request) -> Response:
            session = await run_in_threadpool(current_session, request)
            if session is None:
                return to_login()
            form: dict[str, str] = {}
            if request.method == "POST" and _is_file(request):
                request.state.upload = await request.body()  # a file: the body, as sent
            elif request.method == "POST":
                form = await form_fields(request)
            try:
                if request.method == "POST":
                    check_csrf(session, form.get("csrf") or request.headers.get(CSRF_HEADER))
                session.principal.require(action)
                with storage_errors():
                    return await run_in_threadpool(page, request, session, form)
            except (NotAuthenticated, NotPermitted, StorageFailure) as err:
                # the sign-in page with the refusal at the error's status: 401, 403, or 503
                # when the database refused (a page, never a 500)
                signed = None if isinstance(err, NotAuthenticated) else session
                flash = refusal(lang_of(request), err)
                return render(
                    request, "login.html", "sign_in", signed, status=err.http_status, flash=flash
                )

        run.__name__ = page.__name__
        return run

    return wrap


def zone_and_lang(request: Request) -> tuple[tzinfo, str]:
    """The viewer's zone and the page's language."""
    return viewer_zone(request), lang_of(request)


def lang_of(request: Request) -> str:
    """The page's language: the switch's cookie, else the browser's."""
    return language(request.cookies.get("lang"), request.headers.get("accept-language"))


def units_of(engine: Engine, session: Session) -> tuple[str, ...] | None:
    """The branches whose cases the session sees (``None``: every branch)."""
    branch = session.principal.branch
    return None if branch is None else tuple(engine.settings.organisation.covered(branch))


def viewer_zone(request: Request) -> tzinfo:
    """The zone the viewer's browser reported (the script keeps it in a cookie), else
    the configured display zone, else UTC: "today" and report days are cut in it."""
    from casework.workflow.display.zones import zone_named

    cookie = unquote(request.cookies.get(ZONE_COOKIE) or "")
    for name in (cookie, engine_of(request).settings.display_timezone):
        if name:
            try:
                return zone_named(name, "zone")
            except InvalidInput:
                continue
    return UTC


ZONE_COOKIE = "casework_tz"
