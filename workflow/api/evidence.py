"""Evidence over HTTP: attach a file to a case (``casework attach``) and read one back
by its digest."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from casework.workflow.access import scope
from casework.workflow.api.cases import IDEMPOTENT
from casework.workflow.api.endpoints import endpoint
from casework.workflow.api.idempotency import Answer
from casework.workflow.api.offload import offload_for
from casework.workflow.api.responses import Json, once, problems
from casework.workflow.api.security import Auth, Served, allowed, principal_for
from casework.workflow.engine import Engine
from casework.workflow.errors import AttachmentNotFound, InvalidInput

router = APIRouter(prefix="/v1", tags=["evidence"])
_DIGEST = re.compile(r"[0-9a-f]{64}")
Kind = Annotated[str, Query(description="test_report, photo or invoice.")]
Name = Annotated[str, Query(description="The file's name.")]


@router.post(
    "/cases/{case_id}/attachments",
    status_code=201,
    responses=problems(404, 409, 422),
    summary="Attach a file to a case",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary", "minLength": 1}
                }
            },
            "required": True,
        },
        **IDEMPOTENT,
    },
)
async def attach_file(
    case_id: Annotated[str, Path()], kind: Kind, name: Name, request: Request
) -> Json:
    """The request body is the file; it is kept by its SHA-256 digest and recorded as an
    ``attach`` event by the token's actor (``casework attach``)."""
    engine: Engine = request.app.state.engine
    principal = await principal_for(request)
    content = await request.body()
    key = request.headers.get("idempotency-key")

    def attach() -> Answer:
        scope.visible_case(engine, principal, case_id)
        engine.attach(case_id, content, kind=kind, name=name, actor=principal.actor)
        return Answer(201, engine.history(case_id)[-1].to_json())

    def run() -> Json:
        allowed(principal, "write")
        sent = {"kind": kind, "name": name, "sha256": hashlib.sha256(content).hexdigest()}
        return once(request, principal, engine, key, lambda: sent, attach)

    return await offload_for(engine).run("long", run)


@router.get(
    "/attachments/{digest}",
    responses=problems(404),
    summary="An attached file",
    response_class=Response,
)
@endpoint("short")
def attached_file(digest: Annotated[str, Path()], principal: Auth, engine: Served) -> Response:
    """The file kept under ``digest`` (supervisors, auditors, administrators; a branch
    token's only if a case of its branch attached it)."""
    allowed(principal, "replay")
    if not _DIGEST.fullmatch(digest):
        raise InvalidInput("a digest is 64 lower-case hex digits", field="digest")
    if principal.branch is not None:
        scope.may_download(principal, digest, engine.context.store.attachments.cases(digest))
    content = engine.context.store.attachments.get(digest)
    if content is None:
        raise AttachmentNotFound(digest)
    return Response(content, media_type="application/octet-stream")
