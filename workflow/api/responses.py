"""Answers: JSON through orjson, the problems each route documents, ``ETag`` and
``If-Match`` for a case's version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse

from casework.workflow.access.tokens import Principal
from casework.workflow.api.idempotency import Answer, answer_once, fingerprint
from casework.workflow.api.models import Problem
from casework.workflow.api.problems import MEDIA_TYPE
from casework.workflow.engine import Engine
from casework.workflow.errors import InvalidInput

_DESCRIPTIONS = {
    400: "A request the server could not read (a body that is not JSON, or not UTF-8).",
    401: "No token, or an unknown or revoked one.",
    403: "The token's role may not do this.",
    404: "No such case (or not one of the token's branch).",
    409: "A write that lost a race (without If-Match), an Idempotency-Key in use, or a "
    "conflict with what is there (a token revoking itself, an id registered already).",
    422: "Invalid input, an event not allowed in this state, or a failed guard.",
    503: "The database refused (read-only standby, unreachable).",
}


class Json(JSONResponse):
    """A JSON answer written by orjson (times already ISO 8601 text)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of the problems a route may answer."""
    return {
        code: {
            "model": Problem,
            "description": _DESCRIPTIONS[code],
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in sorted({400, 401, 403, 422, 503, *codes})
    }


def etag(version: int) -> str:
    """The entity tag of a case at ``version``."""
    return f'"{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header names (``None``: none, or ``*``)."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        text = text[1:-1]
    if not text.isdigit() or len(text) > 12:
        raise InvalidInput(
            f'If-Match must be a case\'s ETag such as "3", got {if_match!r}', field="If-Match"
        )
    return int(text)


def send(answer: Answer) -> Json:
    """An endpoint's answer, with ``Location`` and (for a case) ``ETag``."""
    headers: dict[str, str] = {}
    if answer.location is not None:
        headers["Location"] = answer.location
    if isinstance(answer.body, dict) and isinstance(answer.body.get("version"), int):
        headers["ETag"] = etag(answer.body["version"])
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Json(answer.body, status_code=answer.status, headers=headers)


def once(
    request: Request,
    principal: Principal,
    engine: Engine,
    key: str | None,
    payload: Callable[[], Any],
    run: Callable[[], Answer],
) -> Json:
    """Run a ``POST`` once per ``Idempotency-Key`` (``payload()`` gives what the key
    binds: asked for only when a key is given)."""
    stamp = "" if key is None else fingerprint(request.method, request.url.path, payload())
    return send(answer_once(engine.context.store, principal, key, stamp, engine.clock.now(), run))
