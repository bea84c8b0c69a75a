"""Signing in and out, the start page and the language switch."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from casework.workflow.console.frame import (
    current_session,
    engine_of,
    form_fields,
    lang_of,
    render,
    router,
    to_login,
)
from casework.workflow.console.sessions import (
    COOKIE,
    LASTS,
    LOGIN_COOKIE,
    check_csrf,
    check_login,
    sign_in,
    sign_out,
)
from casework.workflow.console.texts import TEXTS, language
from casework.workflow.errors import (
    NotAuthenticated,
    NotPermitted,
    ReadOnlyDatabase,
    StorageFailure,
)
from casework.workflow.labels import refusal
from casework.workflow.storage_boundary import storage_errors


@router.get("/")
async def home(request: Request) -> Response:
    """Writers start at their queue, everyone else at the overdue board."""
    session = await run_in_threadpool(current_session, request)
    if session is None:
        return to_login()
    return RedirectResponse("/queue" if session.principal.may("write") else "/overdue", 303)


@router.get("/favicon.ico")
async def favicon() -> Response:
    """The icon, for pages that do not name one (the reports drawn for files)."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The sign-in form."""
    return render(request, "login.html", "sign_in", None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Exchange a token for a session cookie: only from this server's own sign-in form
    (its pre-session CSRF token, no other site's ``Origin``)."""
    form = await form_fields(request)
    engine = engine_of(request)
    lang = language(request.cookies.get("lang"), request.headers.get("accept-language"))
    try:
        check_login(
            request.cookies.get(LOGIN_COOKIE), form.get("csrf"), request.headers.get("origin"),
            request.headers.get("sec-fetch-site"),
            (request.headers.get("host"), request.headers.get("x-forwarded-host")),
        )  # fmt: skip
        with storage_errors():
            cookie, _ = await run_in_threadpool(
                sign_in, engine.context.store, form.get("token", ""), engine.clock.now(),
                engine.settings.organisation,
            )  # fmt: skip
    except NotPermitted:
        flash = TEXTS[lang]["login_expired"]
        return render(request, "login.html", "sign_in", None, status=403, flash=flash)
    except NotAuthenticated as err:
        return render(
            request, "login.html", "sign_in", None, status=401, flash=refusal(lang_of(request), err)
        )
    except StorageFailure as err:
        read_only = isinstance(err, ReadOnlyDatabase)
        flash = TEXTS[lang]["database_read_only"] if read_only else str(err)
        return render(request, "login.html", "sign_in", None, status=503, flash=flash)
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
    form = await form_fields(request)
    session = await run_in_threadpool(current_session, request)
    if session is not None:
        check_csrf(session, form.get("csrf"))
        engine = engine_of(request)
        sign_out(engine.context.store, request.cookies.get(COOKIE), engine.clock.now())
    answer = to_login()
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
