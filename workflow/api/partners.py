"""Partners and dispatched jobs over HTTP, and the partner report (``casework partners``,
``casework jobs``, ``casework report partners --json``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from casework.workflow.access import scope
from casework.workflow.api import models
from casework.workflow.api.cases import IDEMPOTENT
from casework.workflow.api.endpoints import endpoint
from casework.workflow.api.idempotency import Answer
from casework.workflow.api.refusals import StateConflict
from casework.workflow.api.responses import Json, once, problems
from casework.workflow.api.security import Auth, Served, allowed
from casework.workflow.display.zones import zone_named
from casework.workflow.errors import InvalidInput
from casework.workflow.partners.jobs import add_jobs, job_row
from casework.workflow.partners.ratings import partner_report, quarter
from casework.workflow.partners.registry import add_partner

router = APIRouter(prefix="/v1", tags=["partners"])


@router.get("/partners", responses=problems(), summary="The registered partners")
@endpoint("short")
def list_partners(principal: Auth, engine: Served) -> Json:
    """Every registered partner (``casework partners list --json``)."""
    allowed(principal, "read")
    return Json([p.to_json() for p in engine.context.store.partners.registered()])


@router.post(
    "/partners",
    status_code=201,
    responses=problems(409, 422),
    summary="Register a partner",
    openapi_extra=IDEMPOTENT,
)
@endpoint("short")
def register_partner(
    body: models.NewPartner, request: Request, principal: Auth, engine: Served
) -> Json:
    """Register a partner (administrators; a branch token's, of its branch)."""
    allowed(principal, "admin")
    scope.within(principal, body.branch, "registers partners")

    def run() -> Answer:
        if any(p.id == body.id for p in engine.context.store.partners.registered()):
            raise StateConflict(f"a partner {body.id!r} is registered already", field="id")
        record = add_partner(
            engine.context, body.id, name=body.name, kind=body.kind, branch=body.branch
        )
        return Answer(201, record.to_json())

    key = request.headers.get("idempotency-key")
    return once(request, principal, engine, key, lambda: body.model_dump(mode="json"), run)


@router.post(
    "/jobs",
    status_code=201,
    responses=problems(409, 422),
    summary="Record jobs",
    openapi_extra=IDEMPOTENT,
)
@endpoint("short")
def record_jobs(body: models.NewJobs, request: Request, principal: Auth, engine: Served) -> Json:
    """Record dispatched jobs (supervisors and administrators; a branch token for its
    own branch; never auditors, who write nothing)."""
    allowed(principal, "replay")
    scope.writes(principal)
    scope.within(principal, body.branch, "records jobs")
    values = {**body.model_dump(), "done_at": body.done_at.isoformat()}
    row = job_row(values, zone_named("UTC", "tz"), f"api:{principal.actor}", "body")

    def run() -> Answer:
        return Answer(201, {"rows": 1, "jobs": add_jobs(engine.context, [row])})

    key = request.headers.get("idempotency-key")
    return once(request, principal, engine, key, lambda: body.model_dump(mode="json"), run)


Quarter = Annotated[str, Query(alias="quarter", description="The quarter, e.g. 2026Q3.")]
Zone = Annotated[str | None, Query(description="IANA zone the quarter is cut in (UTC).")]


@router.get("/reports/partners", responses=problems(422), summary="The partner report")
@endpoint("long")
def partners_report(
    principal: Auth, engine: Served, quarter_name: Quarter, tz: Zone = None
) -> Json:
    """Each partner's quarter: points, band, fines, jobs, CSAT, suspended settlements and
    every deduction with its case, event and hash. Supervisors, auditors and
    administrators of every branch."""
    allowed(principal, "replay")
    scope.whole_database(principal, "report on the partners of")
    zone = zone_named(tz or engine.settings.display_timezone or "UTC", "tz")
    if (
        not 1900
        <= int(quarter_name.strip()[:4] if quarter_name.strip()[:4].isdigit() else 1900)
        < 9000
    ):
        raise InvalidInput(f"quarter {quarter_name!r} lies outside the years 1900 to 8999",
                           field="quarter")  # fmt: skip
    period = quarter(quarter_name, zone)
    return Json(partner_report(engine.context, period, engine.settings.partners))
