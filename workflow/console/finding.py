"""Search (a case number or its start, a customer, a phone or contact, a serial or
order number) and a customer's cases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from casework.storage.records import CaseQuery, CaseRecord
from casework.workflow.console import case_view
from casework.workflow.console.frame import (
    lang_of,
    reader_of,
    render,
    router,
    signed_in,
    units_of,
)
from casework.workflow.console.sessions import (
    Session,
)
from casework.workflow.console.standing import countdown, standing
from casework.workflow.labels import label

SEARCH_ROWS = 50
"""The most cases a search shows."""


def listed(request: Request, cases: Sequence[CaseRecord]) -> list[dict[str, Any]]:
    """Cases as list rows: labels, the countdown, the masked contact."""
    engine = reader_of(request)
    lang = lang_of(request)
    now = engine.clock.now()
    rows = []
    for case in cases:
        machine = engine.registry.get(case.machine, case.machine_version)
        found = standing(engine, case, now)
        open_work = machine.is_open(case.state)
        words, late = countdown(lang, found, now) if open_work else ("", False)
        rows.append({
            "case": case, "countdown": words, "late": late,
            "state": label(lang, "state", case.state, machine),
            "category": label(lang, "category", case.category, machine),
            "contact": case_view.masked(case.contact),
            "customer": case_view.shown_person(lang, case.customer),
        })  # fmt: skip
    return rows


def search_page(
    request: Request, session: Session, asked: str, *, status: int = 200,
    flash: str | None = None,
) -> Response:  # fmt: skip
    """The search page for ``asked`` (the cases it finds, of the viewer's branches)."""
    engine = reader_of(request)
    found = (
        engine.context.store.cases.find(asked, SEARCH_ROWS, units_of(engine, session))
        if asked
        else []
    )
    return render(request, "search.html", "search", session, status=status, flash=flash,
                  asked=asked, rows=listed(request, found))  # fmt: skip


@router.get("/search")
@signed_in("read")
def search(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Find cases by a case number or its first characters, a customer, a phone or
    contact, a serial or an order number; one case found opens it."""
    asked = (request.query_params.get("q") or "").strip()
    if asked:
        found = reader_of(request).context.store.cases.find(
            asked, 2, units_of(reader_of(request), session)
        )
        if len(found) == 1:
            return RedirectResponse(f"/cases/{found[0].id}", status_code=303)
    return search_page(request, session, asked)


@router.get("/customers/{customer}")
@signed_in("read")
def customer_page(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Every case of a customer (repeats visible), the latest first."""
    engine = reader_of(request)
    customer = request.path_params["customer"]
    query = engine.scoped(CaseQuery(customer=customer, branch=session.principal.branch))
    found = sorted(
        engine.context.store.cases.matching(query), key=lambda c: c.received_at, reverse=True
    )
    return render(request, "customer.html", "customer_cases", session, suffix=customer,
                  customer=customer, rows=listed(request, found))  # fmt: skip
