"""A case's page, the events recorded from its forms, its attached files, and
the complaint intake form."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from casework.machines.definition import EVIDENCE_KINDS, MachineDefinition
from casework.storage import iso
from casework.workflow.access.scope import opening_unit, visible_case
from casework.workflow.cases.intake import INTAKE
from casework.workflow.clock import parse_instant
from casework.workflow.config import Settings
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
        tuple((p.id, p.name) for p in engine.context.store.partners.registered()),
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
    content = None if found is None else engine.context.store.attachments.get(digest)
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


_FORM_KINDS = {"line": "text", "text": "textarea", "choice": "select", "instant": "datetime"}
"""The intake form's input for each kind of field (the machine is the default one)."""


def intake_inputs(lang: str, settings: Settings, definition: MachineDefinition) -> list[Input]:
    """The intake form's inputs: one for each field of the intake (the attributes: one for
    each the default machine declares), the long text last."""
    vocabulary = Vocabulary(settings.channels, settings.categories, settings.priorities, ())
    inputs = []
    for field in INTAKE:
        if field.kind == "attributes":
            inputs += _attribute_inputs(lang, definition, vocabulary)
        elif field.kind in _FORM_KINDS:
            choices = tuple((c, label(lang, field.name, c)) for c in field.choices_in(settings))
            if choices and not field.needed_by(definition) and field.default is None:
                choices = (("", DASH), *choices)
            kind = field.form_type or _FORM_KINDS[field.kind]
            title = TEXTS[lang][field.name]
            inputs.append(Input(field.name, kind, title, choices, field.required))
    return sorted(inputs, key=lambda i: i.kind == "textarea")


def _attribute_inputs(
    lang: str, definition: MachineDefinition, vocabulary: Vocabulary
) -> list[Input]:
    """The inputs ``attr.NAME`` of the attributes ``definition`` declares."""
    inputs = []
    for name, spec in definition.attributes.items():
        found = field_input(lang, definition, "open", name, (), vocabulary)
        kind = (
            found.kind
            if found.kind == "select"
            else {"integer": "number"}.get(spec.kind, spec.kind if spec.kind == "date" else "text")
        )
        inputs.append(Input(f"attr.{name}", kind, found.label, (("", DASH), *found.choices)))
    return inputs


def _open_page(request: Request, session: Session, **extra: Any) -> Response:
    engine = engine_of(request)
    settings = engine.settings
    definition = engine.registry.get(settings.default_machine, None)
    kept = {"branch": session.principal.branch or "", **extra.pop("kept", {})}
    return render(
        request, "open.html", "open", session,
        inputs=intake_inputs(lang_of(request), settings, definition),
        kept=kept, refused=extra.pop("refused", None), **extra,
    )  # fmt: skip


@router.get("/open")
@signed_in("write")
def open_form(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """The complaint intake form."""
    return _open_page(request, session)


@router.post("/open")
@signed_in("write")
def open_case(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Open the complaint (a back-filled received time read in the viewer's zone) in a
    branch the session may open cases of; its page next. A refusal keeps what was
    typed and says why beside the form."""
    engine = engine_of(request)
    principal = session.principal
    zone, lang = zone_and_lang(request)
    try:
        values = _intake_values(form, zone)
        values["branch"] = opening_unit(principal, values["branch"])
        case = engine.open_case(**values, actor=principal.actor, within=principal.branch)
    except CaseworkError as err:
        return _open_page(request, session, refused=refusal(lang, err), kept=form)
    return RedirectResponse(f"/cases/{case.id}", status_code=303)


def _intake_values(form: Mapping[str, str], zone: tzinfo) -> dict[str, Any]:
    """What the intake form sent, by the names of the intake: blanks as not given, the
    received time read in ``zone``, attributes from ``attr.NAME``."""
    values: dict[str, Any] = {}
    for field in INTAKE:
        given = form.get(field.name, "")
        if field.kind == "attributes":
            values[field.name] = _data(form, "attr.") or None
        elif field.kind == "instant":
            moment = given.strip()
            values[field.name] = (
                parse_instant(local_instant(moment, zone, field.name), field.name)
                if moment
                else None
            )
        elif field.kind in _FORM_KINDS:
            values[field.name] = given if field.required else given or None
    return values


def _data(form: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """Form fields ``prefix.NAME`` as data; whole numbers as numbers, blanks left out."""
    values: dict[str, Any] = {}
    for key, value in form.items():
        if key.startswith(prefix) and value.strip():
            text = value.strip()
            values[key.removeprefix(prefix)] = int(text) if text.lstrip("-").isdigit() else text
    return values
