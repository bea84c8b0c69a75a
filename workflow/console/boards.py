"""An agent's queue (open work, breached first, 50 a page) and the overdue board."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from casework.machines.definition import done_states
from casework.storage import iso
from casework.storage.records import CaseQuery
from casework.workflow.console import case_view
from casework.workflow.console.frame import (
    lang_of,
    reader_of,
    render,
    router,
    signed_in,
    viewer_zone,
)
from casework.workflow.console.sessions import (
    Session,
)
from casework.workflow.console.standing import countdown, queue_order, span
from casework.workflow.display.times import local
from casework.workflow.labels import label

QUEUE_PAGE = 50
"""How many rows one page of the queue shows."""


@router.get("/queue")
@signed_in("write")
def queue(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """My open work (neither final nor resting): breached first, the latest first, then
    by the next breach; 50 a page, filtered by state, priority or lateness."""
    engine = reader_of(request)
    lang = lang_of(request)
    principal = session.principal
    asked = request.query_params
    state, priority = asked.get("state") or None, asked.get("priority") or None
    mine = engine.scoped(
        CaseQuery(owner=principal.actor, branch=principal.branch, state=state,
                  priority=priority, not_states=done_states(engine.registry))
    )  # fmt: skip
    now = engine.clock.now()
    ordered = queue_order(engine, engine.context.store.cases.matching(mine), now)
    if asked.get("late"):
        ordered = [s for s in ordered if s.late is not None]
    page_no = int(asked["page"]) if asked.get("page", "").isdigit() else 1
    page_no = max(1, min(page_no, 1 + (len(ordered) - 1) // QUEUE_PAGE if ordered else 1))
    shown = ordered[(page_no - 1) * QUEUE_PAGE : page_no * QUEUE_PAGE]
    rows = []
    for found in shown:
        case = found.case
        machine = engine.registry.get(case.machine, case.machine_version)
        words, late = countdown(lang, found, now)
        rows.append({
            "case": case, "countdown": words, "late": late,
            "due": None if found.breach_at is None else iso(found.breach_at),
            "clock": label(lang, "clock", found.clock) if found.clock else "",
            "state": label(lang, "state", case.state, machine),
            "category": label(lang, "category", case.category, machine),
            "priority": label(lang, "priority", case.priority, machine),
            "customer": case_view.shown_person(lang, case.customer),
        })  # fmt: skip
    states = sorted({s for d in engine.registry for s in d.states if d.is_open(s)})
    chosen = {"state": state or "", "priority": priority or "", "late": asked.get("late", "")}
    return render(
        request, "queue.html", "queue", session, rows=rows, total=len(ordered),
        page_no=page_no, pages=max(1, -(-len(ordered) // QUEUE_PAGE)),
        states=[(s, label(lang, "state", s)) for s in states],
        priorities=[(p, label(lang, "priority", p)) for p in engine.settings.priorities],
        chosen=chosen, request_query=lambda n: urlencode({**chosen, "page": n}),
    )  # fmt: skip


@router.get("/overdue")
@signed_in("read")
def overdue(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Every clock past its target, the latest first: level, owner, branch, how late."""
    engine = reader_of(request)
    lang = lang_of(request)
    rows = []
    for o in engine.overdue():
        machine = engine.registry.get(o.case.machine, o.case.machine_version)
        if not session.principal.sees(o.case) or not machine.is_open(o.case.state):
            continue
        rows.append({
            "case": o.case, "clock": label(lang, "clock", o.clock, machine),
            "late": span(o.late_by.total_seconds(), lang),
            "state": label(lang, "state", o.case.state, machine),
            "erased": case_view.erased(o.case),
            "customer": case_view.shown_person(lang, o.case.customer),
        })  # fmt: skip
    compliance = []
    if session.principal.may("replay"):
        from casework.workflow.display.periods import Period
        from casework.workflow.reports.business import sla_report

        now = engine.clock.now()
        zone = viewer_zone(request)
        midnight = datetime.combine(local(now, zone).date(), time(), tzinfo=zone)
        for name, start in (("today", midnight), ("week", now - timedelta(days=7))):
            period = Period(start, now + timedelta(seconds=1), zone, session.principal.branch)
            compliance.append((name, sla_report(engine.context, period)))
    return render(request, "overdue.html", "overdue", session, rows=rows, compliance=compliance)
