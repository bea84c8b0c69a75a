"""A case's page, the events recorded from its forms, its attached files, and
the complaint intake form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from casework.machines.definition import EVIDENCE_KINDS
from casework.storage import iso
from casework.workflow.access.scope import opening_unit
from casework.workflow.api.security import visible_case
from casework.workflow.clock import parse_instant
from casework.workflow.console import case_view
from casework.workflow.console.actions import actions
from casework.workflow.console.case_view import DASH
from casework.workflow.console.finding import search_page
from casework.workflow.console.forms import Input, Vocabulary, field_input, form_data, local_instant
from casework.workflow.console.frame import (
    PAGE_HEADERS,
    engine_of,
    lang_of,
    render,
    router,
    signed_in,
    zone_and_lang,
)
from casework.workflow.console.sessions import (
    Session,
)
from casework.workflow.console.standing import countdown, span, standing
from casework.workflow.console.texts import TEXTS
from casework.workflow.errors import (
    CaseNotFound,
    CaseworkError,
    InvalidInput,
)
from casework.workflow.labels import label, refusal


def _case_page(
    request: Request,
    session: Session,
    case_id: str,
    *,
    refused: tuple[str, str] | None = None,
    kept: Mapping[str, str] | None = None,
) -> Response:
    """A case's page; ``refused`` (event, reason) puts the reason beside that event's
    form, which keeps the values ``kept`` that were typed."""
    engine = engine_of(request)
    zone, lang = zone_and_lang(request)
    case = visible_case(engine, session.principal, case_id)
    machine = engine.registry.get(case.machine, case.machine_version)
    events = engine.history(case.id)
    now = engine.clock.now()
    found = standing(engine, case, now)
    words, late = countdown(lang, found, now)
    explained = engine.explain_sla(case.id)
    clocks = []
    for clock in explained["clocks"]:
        if not clock.get("cycle"):
            continue
        target = clock.get("target_s") or 0
        used = clock.get("used_s") or 0
        outcome = clock.get("outcome")
        clocks.append(
            {
                "name": label(lang, "clock", clock["clock"], machine), "used": span(used, lang),
                "target": span(target, lang),
                "share": round(100 * used / target) if target else 0,
                "due": clock.get("target_at") if clock.get("outcome") == "open" else None,
                "outcome": clock.get("outcome"),
                "outcome_label": TEXTS[lang][outcome] if outcome in ("met", "breached") else "",
            }
        )  # fmt: skip
    vocabulary = Vocabulary(
        engine.settings.channels, engine.settings.categories, engine.settings.priorities,
        tuple((p.id, p.name) for p in engine.context.store.partners()),
    )  # fmt: skip
    menu = case_view.menu(lang, machine, case, actions(engine, case), vocabulary)
    rows = case_view.timeline(lang, machine, events, zone)
    linked = sorted({f.href for r in rows for f in r.fields if f.href and "/files/" not in f.href})
    files = [e for e in events if e.event == "attach"]
    return render(
        request, "case.html", "case", session, suffix=case.id[:8],
        case=case, state_label=label(lang, "state", case.state, machine),
        countdown=words, late=late,
        breach_at=None if found.breach_at is None else iso(found.breach_at),
        clocks=clocks, timers=[
            {**t, "label": label(lang, "timer", t["name"], machine)}
            for t in case.sla.get("timers", ())
        ],
        chain_ok=engine.verify(case.id).ok, menu=menu, rows=rows, linked=linked,
        files=files, erased=case_view.erased(case), evidence_kinds=EVIDENCE_KINDS,
        is_open=case.state not in machine.final_states,
        panel=case_view.panel(lang, machine, case, engine.settings.warranty, now),
        refused=refused, kept=kept or {},
        meta=[(label(lang, "field", n, machine), v) for n, v in (
            ("owner", case.owner), ("branch", case.branch or DASH),
            ("channel", label(lang, "channel", case.channel, machine)),
            ("category", label(lang, "category", case.category, machine)),
            ("level", f"L{case.escalation_level}"),
        )],
    )  # fmt: skip


@router.get("/cases/{case_id}")
@signed_in("read")
def case_page(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """A case (its id or a unique prefix): the state and the time to the breach, the
    customer and product, the next step first, the timeline in labels and local times."""
    engine = engine_of(request)
    asked = request.path_params["case_id"]
    try:
        found = engine.resolve(asked, session.principal.branch)
        if found != asked:
            return RedirectResponse(f"/cases/{found}", status_code=303)
        return _case_page(request, session, found)
    except (CaseNotFound, InvalidInput) as err:
        return search_page(request, session, asked, status=404,
                           flash=refusal(lang_of(request), err))  # fmt: skip


@router.get("/cases/{case_id}/files/{digest}")
@signed_in("read")
def attached(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """A file the case attached, as a download (only through a case the viewer sees)."""
    engine = engine_of(request)
    case_id, digest = request.path_params["case_id"], request.path_params["digest"]
    try:
        case = visible_case(engine, session.principal, case_id)
    except CaseworkError as err:
        return search_page(request, session, "", status=404, flash=refusal(lang_of(request), err))
    named = [e for e in engine.history(case.id) if e.event == "attach"]
    found = next((e for e in named if e.data.get("digest") == digest), None)
    content = None if found is None else engine.context.store.attachment(digest)
    if found is None or content is None:
        flash = TEXTS[lang_of(request)]["no_results"]
        return search_page(request, session, "", status=404, flash=flash)
    name = str(found.data.get("name") or digest[:12])
    disposition = f"attachment; filename*=UTF-8''{quote(name)}"
    return Response(
        content, media_type="application/octet-stream",
        headers={**PAGE_HEADERS, "Content-Disposition": disposition},
    )  # fmt: skip


@router.post("/cases/{case_id}/files")
@signed_in("write")
def attach(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Attach the file sent as the body (``?kind=photo&name=...``, the CSRF token in
    ``X-CSRF-Token``): 204, or 422 with the refusal in the page's language."""
    engine = engine_of(request)
    asked = request.query_params
    try:
        case = visible_case(engine, session.principal, request.path_params["case_id"])
        content: bytes = getattr(request.state, "upload", b"")
        if not content:
            raise InvalidInput("the file is empty", field="file")
        name = asked.get("name", "") or "file"
        kind = asked.get("kind", "")
        engine.attach(case.id, content, kind=kind, name=name, actor=session.principal.actor)
    except CaseworkError as err:
        return PlainTextResponse(refusal(lang_of(request), err), status_code=422)
    return Response(status_code=204)


@router.post("/cases/{case_id}/events")
@signed_in("write")
def fire(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Record an event from its form (times read in the viewer's zone); a refusal is
    said beside that form, in the page's language, the typed values kept."""
    engine = engine_of(request)
    zone, lang = zone_and_lang(request)
    case_id = request.path_params["case_id"]
    event = form.get("event", "")
    machine = None
    try:
        case = visible_case(engine, session.principal, case_id)
        machine = engine.registry.get(case.machine, case.machine_version)
        vocabulary = Vocabulary((), (), (), ())
        shown = case_view.menu(lang, machine, case, actions(engine, case), vocabulary).get(event)
        version = form.get("version", "")
        engine.fire(
            case_id, event, actor=session.principal.actor,
            data=form_data(form, "data.", () if shown is None else shown.inputs, zone),
            note=form.get("note") or None,
            expected_version=int(version) if version.isdigit() else None,
            within=session.principal.branch, role=session.principal.role,
        )  # fmt: skip
    except CaseworkError as err:
        # The page again, the refusal beside the form (200: the page itself is fine).
        reason = refusal(lang, err, machine)
        return _case_page(request, session, case_id, refused=(event, reason), kept=form)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


def _open_page(request: Request, session: Session, **extra: Any) -> Response:
    engine = engine_of(request)
    lang = lang_of(request)
    settings = engine.settings
    definition = engine.registry.get(settings.default_machine, None)
    vocabulary = Vocabulary(settings.channels, settings.categories, settings.priorities, ())
    attributes = []
    for name, spec in definition.attributes.items():
        found = field_input(lang, definition, "open", name, (), vocabulary)
        kind = (
            found.kind
            if found.kind == "select"
            else {"integer": "number"}.get(spec.kind, spec.kind if spec.kind == "date" else "text")
        )
        attributes.append(Input(name, kind, found.label, (("", DASH), *found.choices)))
    return render(
        request, "open.html", "open", session,
        channels=[(c, label(lang, "channel", c)) for c in settings.channels],
        categories=[(c, label(lang, "category", c)) for c in settings.categories],
        priorities=[(p, label(lang, "priority", p)) for p in settings.priorities],
        attributes=attributes, kept=extra.pop("kept", {}), refused=extra.pop("refused", None),
        **extra,
    )  # fmt: skip


@router.get("/open")
@signed_in("write")
def open_form(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """The complaint intake form."""
    return _open_page(request, session)


@router.post("/open")
@signed_in("write")
def open_case(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Open the complaint (a back-filled received time read in the viewer's zone); its
    page next. A refusal keeps what was typed and says why beside the form."""
    engine = engine_of(request)
    principal = session.principal
    zone, lang = zone_and_lang(request)
    try:
        received = form.get("received_at", "").strip()
        at = (
            parse_instant(local_instant(received, zone, "received_at"), "received_at")
            if received
            else None
        )
        case = engine.open_case(
            customer=form.get("customer", ""), summary=form.get("summary", ""),
            channel=form.get("channel") or None, category=form.get("category") or None,
            priority=form.get("priority") or "normal", contact=form.get("contact") or None,
            branch=opening_unit(principal, form.get("branch")), actor=principal.actor,
            received_at=at,
            attributes=_data(form, "attr.") or None, within=principal.branch,
        )  # fmt: skip
    except CaseworkError as err:
        return _open_page(request, session, refused=refusal(lang, err), kept=form)
    return RedirectResponse(f"/cases/{case.id}", status_code=303)


def _data(form: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """Form fields ``prefix.NAME`` as data; whole numbers as numbers, blanks left out."""
    values: dict[str, Any] = {}
    for key, value in form.items():
        if key.startswith(prefix) and value.strip():
            text = value.strip()
            values[key.removeprefix(prefix)] = int(text) if text.lstrip("-").isdigit() else text
    return values
