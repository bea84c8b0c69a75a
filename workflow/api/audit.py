"""``/v1/verify`` and ``/v1/export``: what auditors ask, and nothing they could write."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from casework.workflow.access.scope import report_period, visible_case, whole_database
from casework.workflow.access.tokens import Principal
from casework.workflow.api import models
from casework.workflow.api.endpoints import endpoint
from casework.workflow.api.models import Instant
from casework.workflow.api.responses import Json, problems
from casework.workflow.api.security import Auth, Served, allowed
from casework.workflow.audit.export_stream import export_stream
from casework.workflow.clock import aware
from casework.workflow.engine import Engine
from casework.workflow.errors import InvalidInput

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get(
    "/verify",
    response_model=models.VerifyReport,
    responses=problems(404, 422),
    summary="Check every hash chain and replay",
)
@endpoint("long", reads=True)
def verify(
    principal: Auth,
    engine: Served,
    case: Annotated[str | None, Query(description="Only this case.")] = None,
) -> Json:
    """Every chain and every stored case against its replay (or one case's); ``ok`` false
    with the case, event and reason of each problem."""
    allowed(principal, "audit")
    if case is None:
        whole_database(principal, "verify")
    else:
        visible_case(engine, principal, case)
    return Json(engine.verify(case).to_json())


@router.get(
    "/export",
    responses={
        200: {
            "description": "The casework-export format: a header line, one line per event, "
            "an end record with the counts and digest.",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        },
        **problems(422),
    },
    response_class=StreamingResponse,
    summary="Export the events with their hashes",
)
@endpoint("long", reads=True)
def export(
    principal: Auth,
    engine: Served,
    since: Annotated[Instant | None, Query(description="Events at or after this.")] = None,
    until: Annotated[Instant | None, Query(description="Events before this.")] = None,
) -> Any:
    """The events with their hashes, streamed as NDJSON from one snapshot (what
    ``casework export`` writes; ``casework verify --export`` checks it)."""
    allowed(principal, "audit")
    whole_database(principal, "export")
    low = None if since is None else aware(since, "since")
    high = None if until is None else aware(until, "until")
    if low is not None and high is not None and high <= low:
        raise InvalidInput("until must be later than since", field="until")
    return StreamingResponse(
        export_stream(engine.context, low, high), media_type="application/x-ndjson"
    )


Since = Annotated[
    str | None,
    Query(alias="from", description="Cases received from this day or time (a date is a "
          "day in `tz`), e.g. 2026-11-01 or 2026-11-01T00:00:00+08:00."),
]  # fmt: skip
Until = Annotated[
    str | None,
    Query(alias="to", description="... through this day, or up to this time. Default: now."),
]
Month = Annotated[str | None, Query(description="Instead of from/to: a month, YYYY-MM.")]
Last = Annotated[str | None, Query(description="Instead of from/to: the last 24h, 7d, 4w, ...")]
Zone = Annotated[
    str | None,
    Query(description="IANA zone days and weeks are cut in. Default: [display] timezone, "
          "else UTC."),
]  # fmt: skip
Branch = Annotated[
    str | None, Query(description="Only this branch's cases (a branch token: its own).")
]


@router.get("/reports/sla", responses=problems(422), summary="The SLA report")
@endpoint("long", reads=True)
def sla_report(
    principal: Auth, engine: Served, start: Since = None, end: Until = None,
    month: Month = None, last: Last = None, tz: Zone = None, branch: Branch = None,
) -> Json:  # fmt: skip
    """The summary (compliance per clock, cases late now by level, worst branches),
    first response per branch and category, per branch, category, channel and owner;
    time to first response as percentiles; escalations per level; hand-overs; the weekly
    trend (``casework report sla --json``). Supervisors, auditors and administrators; a
    branch token gets its branch's report."""
    asked = {"start": start, "end": end, "month": month, "last": last}
    return _report("sla", principal, engine, asked, tz, branch)


@router.get("/reports/complaints", responses=problems(422), summary="The complaint structure")
@endpoint("long", reads=True)
def complaints_report(
    principal: Auth, engine: Served, start: Since = None, end: Until = None,
    month: Month = None, last: Last = None, tz: Zone = None, branch: Branch = None,
) -> Json:  # fmt: skip
    """Share per category, per branch and channel, per week (``casework report
    complaints --json``, without dispatched jobs). Supervisors, auditors and
    administrators; a branch token gets its branch's report."""
    asked = {"start": start, "end": end, "month": month, "last": last}
    return _report("complaints", principal, engine, asked, tz, branch)


def _report(
    name: str,
    principal: Principal,
    engine: Engine,
    asked: dict[str, str | None],
    tz: str | None,
    branch: str | None,
) -> Json:
    from casework.workflow.reports import business

    allowed(principal, "replay")
    if not any(asked.values()):  # no period named: the last 30 days
        asked = {**asked, "last": "30d"}
    period = report_period(
        principal, asked, tz, branch,
        display_zone=engine.settings.display_timezone, now=engine.clock.now(),
    )  # fmt: skip
    if name == "sla":
        return Json(business.sla_report(engine.context, period))
    return Json(business.complaints_report(engine.context, period, None))
