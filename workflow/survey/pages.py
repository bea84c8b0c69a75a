"""The customer's page at ``/s/<token>``: no sign-in, no script, phone-sized first.

``GET`` shows the case's status and, once it is resolved, the survey form; ``POST``
records the answer. The form is safe from cross-site posting twice over: the token is
in the URL only its customer has, and the form carries a nonce derived from it that
only a page served for that token holds. Answers pass the limits and escaping of every
other input; every page is ``no-store``, sends no referrer (the token stays out of
other sites' logs) and may not be framed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import jinja2
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from casework.workflow.context import Context
from casework.workflow.errors import CaseworkError, InvalidInput, StorageFailure
from casework.workflow.labels import text
from casework.workflow.storage_boundary import storage_errors
from casework.workflow.survey import service
from casework.workflow.survey import token as tokens

router = APIRouter(include_in_schema=False)
_pages = jinja2.Environment(
    loader=jinja2.PackageLoader("casework.workflow.survey", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
MAX_FORM_BYTES = 16_384


def _context(request: Request) -> Context:
    context: Context = request.app.state.engine.context
    return context


def _render(lang: str, code: int, **values: Any) -> HTMLResponse:
    values.setdefault("status", None)
    values.setdefault("message", None)
    values.setdefault("error", None)
    html = _pages.get_template("page.html").render(
        lang=lang, t=lambda msgid, **v: text(lang, msgid, **v), limit=service.MAX_COMMENT_CHARS,
        **values,
    )  # fmt: skip
    return HTMLResponse(html, status_code=code, headers=HEADERS)


def _fallback_lang(request: Request, context: Context) -> str:
    return service.language(
        None, request.headers.get("accept-language"), context.settings.notify.language
    )


def _page(request: Request, token: str, *, error: str | None = None, status: int = 200,
          message: str | None = None) -> HTMLResponse:  # fmt: skip
    context = _context(request)
    case_id = service.now_valid(context, token)
    found = service.status(context, case_id, request.headers.get("accept-language"))
    secrets = context.settings.notify.survey_secrets
    return _render(
        found.lang, status, status=found, token=token, error=error, message=message,
        nonce=tokens.form_nonce(token, secrets),
    )  # fmt: skip


def _invalid(request: Request) -> HTMLResponse:
    lang = _fallback_lang(request, _context(request))
    return _render(lang, 404, message=text(lang, "survey.invalid"))


@router.get("/s/{token}")
async def survey_page(token: str, request: Request) -> Response:
    """The customer's status page (and survey, once the case is resolved)."""
    try:
        with storage_errors():
            return await run_in_threadpool(_page, request, token)
    except tokens.LinkInvalid:
        return _invalid(request)
    except StorageFailure:
        lang = _fallback_lang(request, _context(request))
        return _render(lang, 503, message=text(lang, "survey.unavailable"))


def _score(form: dict[str, str]) -> tuple[int, bool] | None:
    score, fixed = form.get("score", ""), form.get("fixed", "")
    if not (score.isascii() and score.isdigit() and len(score) == 1) or fixed not in ("yes", "no"):
        return None
    number = int(score)
    return (number, fixed == "yes") if 1 <= number <= 5 else None


def _answer(request: Request, token: str, form: dict[str, str]) -> HTMLResponse:
    context = _context(request)
    case_id = service.now_valid(context, token)
    found = service.status(context, case_id, request.headers.get("accept-language"))
    lang = found.lang
    if not tokens.nonce_ok(token, form.get("nonce", ""), context.settings.notify.survey_secrets):
        return _page(request, token, error=text(lang, "survey.stale_form"), status=403)
    given = _score(form)
    if given is None:
        return _page(request, token, error=text(lang, "survey.bad_answer"), status=422)
    comment = form.get("comment", "")
    if len(comment) > service.MAX_COMMENT_CHARS:
        limit = service.MAX_COMMENT_CHARS
        return _page(request, token, error=text(lang, "survey.too_long", limit=limit), status=422)
    try:
        outcome = service.answer(context, case_id, given[0], given[1], comment)
    except InvalidInput:
        return _page(request, token, error=text(lang, "survey.bad_answer"), status=422)
    key = {"already": "survey.already", "reopened": "survey.reopened"}.get(outcome, "survey.thanks")
    status = 409 if outcome == "already" else 200
    return _page(request, token, message=text(lang, key), status=status)


@router.post("/s/{token}")
async def survey_answer(token: str, request: Request) -> Response:
    """Record the customer's survey answer (once)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        lang = _fallback_lang(request, _context(request))
        return _render(lang, 413, message=text(lang, "survey.bad_answer"))
    decoded = body.decode("utf-8", "replace")
    form = {k: v[-1] for k, v in parse_qs(decoded, keep_blank_values=True).items()}
    try:
        with storage_errors():
            return await run_in_threadpool(_answer, request, token, form)
    except tokens.LinkInvalid:
        return _invalid(request)
    except (StorageFailure, CaseworkError):
        lang = _fallback_lang(request, _context(request))
        return _render(lang, 503, message=text(lang, "survey.unavailable"))
