"""``/v1/cases``: open, read, list, fire, history, replay and SLA of cases."""

from __future__ import annotations

import base64
import binascii
import functools
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from casework.storage.database import HostConnection, after_commit
from casework.storage.records import CaseQuery
from casework.workflow.access.scope import opening_unit, visible_case
from casework.workflow.api import models
from casework.workflow.api.endpoints import declare, endpoint
from casework.workflow.api.idempotency import Answer
from casework.workflow.api.refusals import PreconditionFailed
from casework.workflow.api.responses import Json, etag, expected_version, once, problems
from casework.workflow.api.security import Auth, Served, allowed
from casework.workflow.cases.firing import checked_outside
from casework.workflow.cases.intake import FIELDS, checked_value
from casework.workflow.cases.paging import page_limit
from casework.workflow.engine import Engine
from casework.workflow.errors import ConcurrentUpdate, InvalidInput
from casework.workflow.validation import choice

router = APIRouter(prefix="/v1", tags=["cases"])


def header(name: str, description: str) -> dict[str, Any]:
    """The OpenAPI description of an optional request header."""
    return {"name": name, "in": "header", "required": False, "schema": {"type": "string"},
            "description": description}  # fmt: skip


IDEMPOTENT = {
    "parameters": [
        header("Idempotency-Key", "The same key and body within 24 h return the first answer.")
    ]
}
"""The ``openapi_extra`` of a ``POST`` that takes ``Idempotency-Key``; such a route reads
its headers itself (a declared header parameter costs more than the request's work)."""


def groupable(engine: Engine, request: Request, body: models.FireEvent, **_: Any) -> bool:
    """Whether an event may share a transaction with others: one without an
    ``Idempotency-Key`` (a keyed one keeps its answer in transactions of its own), whose
    checks read nothing outside its transaction (those would miss the writes before it
    in the group: :func:`~casework.workflow.cases.firing.checked_outside`)."""
    return "idempotency-key" not in request.headers and not checked_outside(
        engine.context, body.event
    )


def _body(request_body: models.OpenCase | models.FireEvent) -> dict[str, Any]:
    return request_body.model_dump(mode="json", exclude_unset=True)


def apply_event(
    case_id: str,
    body: models.FireEvent,
    request: Request,
    principal: Auth,
    engine: Served,
    connection: HostConnection | None = None,
) -> Json:
    """Apply an event as the token's actor; the case after it, with its new ``ETag``.
    A stale ``If-Match`` answers 412 (a lost race without one 409); an event not
    allowed in the state, or whose guard fails, 422 with the state and the events
    allowed. (Most requests take the short way of :mod:`casework.workflow.api.hot_path` to the
    same code.) Given a group's ``connection`` (a request :func:`groupable`
    accepts), the event is written in its transaction."""
    expected = expected_version(request.headers.get("if-match"))
    key = request.headers.get("idempotency-key")

    def run() -> Answer:
        if principal.branch is not None:
            visible_case(engine, principal, case_id)
        try:
            case = engine.fire(
                case_id,
                body.event,
                actor=principal.actor,
                data=body.data,
                note=body.note,
                at=body.at,
                expected_version=expected,
                within=principal.branch,
                role=principal.role,
                connection=connection,
            )
        except ConcurrentUpdate as err:
            if expected is None:
                raise
            raise PreconditionFailed(case_id, expected, err.actual_version) from None
        after_commit(
            connection, functools.partial(request.app.state.metrics.transition, body.event)
        )
        return Answer(200, case.to_json())

    return once(request, principal, engine, key, lambda: [_body(body), expected], run)


fire = declare(
    router,
    "POST",
    "/cases/{case_id}/events",
    apply_event,
    "short",
    needs="write",
    grouped=groupable,
    response_model=models.Case,
    responses=problems(404, 409, 422),
    summary="Apply an event",
    openapi_extra={
        "parameters": [
            header("If-Match", 'The case\'s ETag, e.g. "3": 409 if the case moved on.'),
            *IDEMPOTENT["parameters"],
        ]
    },
)
"""Firing an event: FastAPI's route and the short way
(:class:`casework.workflow.api.hot_path.HotPath`) built from this one declaration."""


@router.post(
    "/cases",
    status_code=201,
    response_model=models.Case,
    responses=problems(409, 422),
    summary="Open a case",
    openapi_extra=IDEMPOTENT,
)
@endpoint("short")
def open_case(
    body: models.OpenCase,
    request: Request,
    principal: Auth,
    engine: Served,
) -> Json:
    """Open a complaint; the token's actor receives (owns) it. A branch token opens cases
    of its branch (and its stores) only. Answers 201 with the case, ``Location`` and ``ETag``."""
    allowed(principal, "write")
    values = body.model_dump()
    values["branch"] = opening_unit(principal, values["branch"])
    key = request.headers.get("idempotency-key")

    def run() -> Answer:
        case = engine.open_case(**values, actor=principal.actor, within=principal.branch)
        request.app.state.metrics.transition("open")
        return Answer(201, case.to_json(), f"/v1/cases/{case.id}")

    return once(request, principal, engine, key, lambda: _body(body), run)


@router.get(
    "/cases/{case_id}",
    response_model=models.Case,
    responses=problems(404, 422),
    summary="A case",
)
@endpoint("short")
def get_case(case_id: str, principal: Auth, engine: Served) -> Json:
    """The case with its pending deadlines; ``ETag`` is its version."""
    allowed(principal, "read")
    case = visible_case(engine, principal, case_id)
    return Json(case.to_json(), headers={"ETag": etag(case.version)})


@router.get(
    "/cases",
    response_model=models.CasePage,
    responses=problems(422),
    summary="List cases",
)
@endpoint("long", reads=True)
def list_cases(
    principal: Auth,
    engine: Served,
    state: str | None = None,
    overdue: bool = False,
    branch: str | None = None,
    owner: str | None = None,
    customer: str | None = None,
    channel: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
    cursor: str | None = None,
) -> Json:
    """Cases in the order received, filtered; ``limit`` (50 by default) per page, and
    ``next_cursor`` for the next. With ``overdue=true``: the clocks past their target,
    latest first (the shape of ``casework list --overdue --json``)."""
    allowed(principal, "read")
    if state is not None:
        choice(state, "state", [st for d in engine.registry for st in d.states])
    for name, value in (("channel", channel), ("category", category), ("priority", priority)):
        if value is not None:
            checked_value(FIELDS[name], value, engine.settings)
    if branch is not None and not principal.within(branch):
        return Json({"items": [], "next_cursor": None})
    branch = branch or principal.branch
    query = CaseQuery(state, branch, owner, customer, channel, category, priority)
    if overdue:
        return Json(_overdue_page(engine, query, limit, cursor))
    return Json(engine.page(query, limit=limit, cursor=cursor).to_json())


def _overdue_page(
    engine: Engine, query: CaseQuery, limit: int | None, cursor: str | None
) -> dict[str, Any]:
    size = page_limit(limit)
    start = 0 if cursor is None else _offset(cursor)
    late = engine.overdue(query=query)
    items = [o.to_json() for o in late[start : start + size]]
    more = start + size < len(late)
    token = base64.urlsafe_b64encode(f"late|{start + size}".encode()).decode().rstrip("=")
    return {"items": items, "next_cursor": token if more else None}


def _offset(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition("|")
        if kind == "late" and number.isdigit():
            return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise InvalidInput("cursor is not one a list returned", field="cursor")


@router.get(
    "/cases/{case_id}/history",
    response_model=list[models.Event],
    responses=problems(404, 422),
    summary="The events of a case",
)
@endpoint("short")
def history(case_id: str, principal: Auth, engine: Served) -> Json:
    """The case's events, oldest first, each with its place in the hash chain."""
    allowed(principal, "read")
    visible_case(engine, principal, case_id)
    return Json([e.to_json() for e in engine.history(case_id)])


@router.get(
    "/cases/{case_id}/replay",
    response_model=models.Replay,
    responses=problems(404, 422),
    summary="Rebuild a case from its history",
)
@endpoint("short")
def replay(
    case_id: str,
    principal: Auth,
    engine: Served,
    at: Annotated[models.Instant | None, Query(description="The state as it stood then.")] = None,
) -> Json:
    """The state rebuilt from the history alone, at the end or at ``at`` (auditors and
    supervisors)."""
    allowed(principal, "replay")
    visible_case(engine, principal, case_id)
    return Json(engine.replay(case_id, at).to_json())


@router.get(
    "/cases/{case_id}/sla",
    response_model=models.SlaExplain,
    responses=problems(404, 422),
    summary="How the SLA clocks of a case stand",
)
@endpoint("short")
def sla(case_id: str, principal: Auth, engine: Served) -> Json:
    """Each clock, its target and calendar, and how its next deadline was computed."""
    allowed(principal, "read")
    visible_case(engine, principal, case_id)
    return Json(engine.explain_sla(case_id))


@router.post(
    "/cases/{case_id}/replan",
    response_model=models.Case,
    responses=problems(404, 409, 422),
    summary="Move a case to the configured SLA policy",
    openapi_extra=IDEMPOTENT,
)
@endpoint("short")
def replan(case_id: str, request: Request, principal: Auth, engine: Served) -> Json:
    """Record a ``replan`` event moving the case to the configured policy (supervisors)."""
    allowed(principal, "replay")
    allowed(principal, "write")
    key = request.headers.get("idempotency-key")

    def run() -> Answer:
        visible_case(engine, principal, case_id)
        return Answer(200, engine.replan(case_id, actor=principal.actor).to_json())

    return once(request, principal, engine, key, lambda: None, run)
