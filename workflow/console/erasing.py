"""Erasing a customer from the console: administrators confirm which person first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from casework.storage.records import CaseQuery
from casework.workflow.access.scope import NO_CUSTOMER, may_erase
from casework.workflow.console.finding import listed
from casework.workflow.console.frame import (
    engine_of,
    lang_of,
    render,
    router,
    signed_in,
)
from casework.workflow.console.sessions import (
    Session,
)
from casework.workflow.console.texts import TEXTS
from casework.workflow.errors import (
    CaseworkError,
    InvalidInput,
)
from casework.workflow.labels import refusal


@router.get("/erase")
@signed_in("admin")
def erase_form(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """An administrator names a customer and sees each of their cases (branch, received
    date, masked contact) before erasing: the right person, confirmed."""
    engine = engine_of(request)
    customer = (request.query_params.get("customer") or "").strip()
    rows: list[dict[str, Any]] = []
    flash = None
    if customer:
        named = engine.context.store.cases.matching(CaseQuery(customer=customer))
        try:
            may_erase(session.principal, named)
            if not named:
                raise InvalidInput(NO_CUSTOMER, field="customer")
        except CaseworkError as err:
            flash, named = refusal(lang_of(request), err), []
        rows = listed(request, sorted(named, key=lambda c: c.received_at))
    contacts = len({r["contact"] for r in rows})
    return render(request, "erase.html", "erase", session, customer=customer, rows=rows,
                  contacts=contacts, flash=flash, done=None)  # fmt: skip


@router.post("/erase")
@signed_in("admin")
def erase(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Erase the confirmed customer (:meth:`Engine.erase`)."""
    engine = engine_of(request)
    customer = form.get("customer", "").strip()
    try:
        may_erase(
            session.principal, engine.context.store.cases.matching(CaseQuery(customer=customer))
        )
        done = engine.erase(customer, actor=session.principal.actor,
                            reason=form.get("reason", "").strip())  # fmt: skip
    except CaseworkError as err:
        return render(request, "erase.html", "erase", session, customer=customer, rows=[],
                      contacts=0, flash=refusal(lang_of(request), err), done=None)  # fmt: skip
    cases = done.get("cases") or []
    count = len(cases) if isinstance(cases, list) else cases
    words = TEXTS[lang_of(request)]["erase_done"].format(cases=count)
    return render(request, "erase.html", "erase", session, customer="", rows=[], contacts=0,
                  done=words)  # fmt: skip
