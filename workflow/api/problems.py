"""Errors as RFC 9457 problem details (``application/problem+json``), with the error's
context: 404 unknown case, 409 concurrent update, 412 stale ``If-Match``, 422 invalid
input, event not allowed or failed guard, 400 malformed JSON, 415 a body of another
media type, 405 (with ``Allow``) a method the path does not take, 401 no valid token,
403 not permitted, 503 the database refused: each error class's ``http_status``
(:mod:`casework.workflow.errors`). Bad input never becomes a 500; a storage
error that reaches here from any route (one that wrote through the store rather than
the engine) is translated as the engine translates it
(:func:`casework.workflow.storage_boundary.translated`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from casework.workflow.errors import CaseworkError, StorageFailure, UnknownChoice
from casework.workflow.logs import library_logger
from casework.workflow.storage_boundary import storage_error_types, translated

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:casework:problem:"
"""Problem types are URNs: stable names, nothing to fetch."""
RETRY_AFTER_S = 2
"""The ``Retry-After`` of a 503: a burst passes, a standby is promoted, in seconds."""

_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not permitted",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    500: "Internal error",
    503: "Service unavailable",
}
_CONTEXT = (
    "case_id", "event", "state", "allowed", "condition", "requirement", "field",
    "value", "choices", "expected_version", "actual_version", "webhook_id", "token_id",
    "mail_id",
)  # fmt: skip


def slug(name: str) -> str:
    """``GuardFailed`` -> ``guard-failed``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def problem(
    status: int,
    kind: str,
    detail: str,
    instance: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> JSONResponse:
    """A problem answer; ``kind`` names its type."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + kind,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update({k: v for k, v in context.items() if v is not None})
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="casework"'
    if status == 503:  # the database is down, busy or read-only: worth another try soon
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def from_error(error: CaseworkError, instance: str | None = None) -> JSONResponse:
    """The problem answer of a casework error, its context attributes included."""
    context: dict[str, Any] = {}
    for name in _CONTEXT:
        value = getattr(error, name, None)
        if value is not None:
            context[name] = list(value) if isinstance(value, tuple) else value
    if isinstance(error, StorageFailure):  # a read-only database too: no driver text
        context = {}
    kind = "invalid-input" if isinstance(error, UnknownChoice) else slug(type(error).__name__)
    return problem(error.http_status, kind, str(error), instance, **context)


def failed(path: str, error: BaseException) -> JSONResponse:
    """The answer to an error nobody expected: logged with its trace, a bare 500."""
    library_logger().error(
        "request_failed", path=path, error_type=type(error).__name__, exc_info=error
    )
    return problem(500, "internal-error", "the server failed; see its log", path)


JSON_TYPES = ("application/json",)
"""The media types a JSON body may be sent as (and any ``application/*+json``)."""


def is_json(content_type: str) -> bool:
    """Whether a ``Content-Type`` names JSON."""
    kind = content_type.split(";")[0].strip().lower()
    return kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json"))


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(app: Any, scope: Mapping[str, Any]) -> list[str]:
    """The methods the routes of ``app`` take on the request's path (``Allow``)."""
    return [
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.routes)
    ]


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as a problem."""

    async def casework_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, CaseworkError)
        return from_error(error, request.url.path)

    async def invalid_request(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in error.errors()
        ]
        kinds = {str(e.get("type", "")) for e in error.errors()}
        sent = request.headers.get("content-type")
        json_route = request.url.path.startswith("/v1/")  # the console's forms are not JSON
        body_only = all(e["loc"][:1] == ["body"] for e in errors)
        if json_route and sent and not is_json(sent) and body_only:
            detail = f"the body must be application/json, not {sent.split(';')[0]}"
            return problem(415, "unsupported-media-type", detail, request.url.path)
        if "json_invalid" in kinds:
            return problem(400, "bad-request", "the body is not valid UTF-8 JSON",
                           request.url.path)  # fmt: skip
        if any(e["loc"][-1:] == ["actor"] for e in errors):
            detail = "the actor is the token's: leave actor out of the body"
        else:
            detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem(422, "invalid-input", detail, request.url.path, errors=errors)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        title = _TITLES.get(error.status_code, "Error")
        detail = error.detail if isinstance(error.detail, str) else title
        kind = title.lower().replace(" ", "-")
        headers = dict(error.headers or {})
        if error.status_code == 405:  # every method of the path, not one route's
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
            detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
        return problem(error.status_code, kind, detail, request.url.path, headers=headers)

    async def storage_error(request: Request, error: Exception) -> JSONResponse:
        return from_error(translated(error), request.url.path)

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return failed(request.url.path, error)

    app.add_exception_handler(CaseworkError, casework_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    for kind in storage_error_types():
        app.add_exception_handler(kind, storage_error)
    app.add_exception_handler(Exception, unexpected)
