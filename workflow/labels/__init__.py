"""One label catalogue: what a person reads for each identifier, in Chinese and English.

The catalogues are gettext ``.po`` files, ``locale/<lang>/LC_MESSAGES/casework.po`` in
this package, read with Babel once per language. An identifier's message id is
``<kind>:<identifier>`` (``state:needs_confirmed``, ``field:book_visit.to``); a
sentence of the interface has a dotted id (``refused.guard``) and ``{name}`` fields.
A ``msgctxt`` of a machine's name labels that machine's identifiers only.

:func:`label` looks in this order: the machine's own ``labels`` (a back office's
machine labels itself), the catalogue under the machine's name, the catalogue, the
vocabularies that carry their own names (product and fault classes, partner
violations), the English catalogue; an identifier nobody labelled is shown as itself.
A language without a catalogue reads English.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from string import Formatter
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from casework.machines.definition import MachineDefinition
from casework.machines.partner_rules import PARTNER_RULES
from casework.machines.warranty import FAULT_CLASSES, PRODUCT_CLASSES, Vocabulary
from casework.workflow.errors import (
    BeyondAuthority,
    CaseNotFound,
    ConcurrentUpdate,
    EventNotAllowed,
    GuardFailed,
    InvalidInput,
    NaiveDatetime,
    NotAuthenticated,
    NotPermitted,
    OutsideBranch,
    ReadOnlyDatabase,
    StorageFailure,
    TimeOutOfOrder,
    UnknownChoice,
    UnknownEvent,
)
from casework.workflow.validation import EMPTY_TEXT, LONG_TEXT

DOMAIN = "casework"
DEFAULT_LANGUAGE = "en"
LABELS_ENV = "CASEWORK_LABELS"
"""A folder of ``<lang>/LC_MESSAGES/casework.po`` files whose messages replace the
shipped ones (relabelling without changing the package)."""
KINDS = (
    "state",
    "event",
    "category",
    "channel",
    "priority",
    "clock",
    "timer",
    "role",
    "remedy",
    "product_class",
    "fault_class",
    "route_unit",
    "field",
    "brand_class",
    "violation",
    "evidence",
    "guard",
    "partner_kind",
    "job_kind",
    "band",
    "ladder",
)
"""The kinds of identifier the catalogue labels."""

_VOCABULARIES: Mapping[str, Vocabulary] = {
    "product_class": PRODUCT_CLASSES,
    "fault_class": FAULT_CLASSES,
}


def _shipped() -> tuple[str, ...]:
    locale = resources.files(__package__).joinpath("locale")
    po = f"{DOMAIN}.po"
    found = {p.name for p in locale.iterdir() if p.joinpath("LC_MESSAGES", po).is_file()}
    return tuple(sorted(found, key=lambda lang: (lang != DEFAULT_LANGUAGE, lang)))


LANGUAGES: tuple[str, ...] = _shipped()
"""The languages that have a catalogue, English first."""


def language(lang: str | None) -> str:
    """``lang`` if it has a catalogue (``zh-CN`` reads as ``zh``), else English."""
    code = (lang or "").strip().replace("_", "-").lower()
    if code in LANGUAGES:
        return code
    code = code.partition("-")[0]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def _read(text: str) -> Catalog:
    return read_po(io.StringIO(text), domain=DOMAIN, charset="utf-8")


@cache
def catalogue(lang: str) -> Catalog:
    """The catalogue of ``lang`` (a language of :data:`LANGUAGES`), read once; with the
    messages of ``$CASEWORK_LABELS/<lang>/LC_MESSAGES/casework.po`` over it, if set."""
    path = resources.files(__package__).joinpath("locale", lang, "LC_MESSAGES", f"{DOMAIN}.po")
    shipped = _read(path.read_text(encoding="utf-8"))
    folder = os.environ.get(LABELS_ENV)
    extra = Path(folder, lang, "LC_MESSAGES", f"{DOMAIN}.po") if folder else None
    if extra is not None and extra.is_file():
        for message in _read(extra.read_text(encoding="utf-8")):
            if message.id and message.string:
                shipped.delete(message.id, context=message.context)
                shipped.add(message.id, message.string, context=message.context)
    return shipped


def _message(lang: str, msgid: str, context: str | None = None) -> str | None:
    message = catalogue(lang).get(msgid, context=context)
    if message is None or not isinstance(message.string, str) or not message.string:
        return None
    return message.string


def _vocabulary(lang: str, kind: str, ident: str) -> str | None:
    if kind == "violation":
        found = PARTNER_RULES.deductions.get(ident)
        if found is None:
            return None
        return (found.zh if lang == "zh" else found.en) or None
    vocabulary = _VOCABULARIES.get(kind)
    if vocabulary is None:
        return None
    term = next((t for t in vocabulary.terms if t.id == ident), None)
    if term is None:
        return None
    return term.zh if lang == "zh" else term.en


def _lookup(
    lang: str, kind: str, ident: str, machine: MachineDefinition | str | None
) -> str | None:
    msgid = f"{kind}:{ident}"
    if isinstance(machine, MachineDefinition):
        own = machine.labels.get(lang, {}).get(msgid)
        if own:
            return own
    name = machine.name if isinstance(machine, MachineDefinition) else machine
    if name:
        found = _message(lang, msgid, name)
        if found:
            return found
    return _message(lang, msgid) or _vocabulary(lang, kind, ident)


def label(
    lang: str | None, kind: str, ident: object, machine: MachineDefinition | str | None = None
) -> str:
    """What a person reading ``lang`` sees for identifier ``ident`` of ``kind``
    (``state``, ``event``, ``category``, ... see :data:`KINDS`), as labelled by
    ``machine`` (its definition or name) where it labels it. A field of one event is
    ``event.field`` (``book_visit.to``), else labelled as the plain field. Never
    raises: an identifier without a label is shown as itself."""
    if ident is None:
        return ""
    text_ident = str(ident)
    lang = language(lang)
    tries = [text_ident]
    if kind == "field" and "." in text_ident:
        tries.append(text_ident.rpartition(".")[2])
    for wanted in tries:
        for code in dict.fromkeys((lang, DEFAULT_LANGUAGE)):
            found = _lookup(code, kind, wanted, machine)
            if found:
                return found
    return text_ident


class _Values(dict[str, Any]):
    """Format values that leave a missing field as it stands, ``{name}``."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def text(lang: str | None, msgid: str, **values: Any) -> str:
    """The interface sentence ``msgid`` in ``lang`` (English where ``lang`` lacks it),
    its ``{name}`` fields filled from ``values``; an unknown ``msgid`` is returned as
    it is. Never raises."""
    lang = language(lang)
    template = _message(lang, msgid) or _message(DEFAULT_LANGUAGE, msgid) or msgid
    try:
        return Formatter().vformat(template, (), _Values(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


def labelled(
    lang: str | None,
    kind: str,
    idents: Iterable[object],
    machine: MachineDefinition | str | None = None,
) -> str:
    """Several identifiers of one kind as one list for a sentence (``、`` in Chinese)."""
    items = [label(lang, kind, i, machine) for i in idents]
    return ("、" if language(lang) == "zh" else ", ").join(items)


_CHOICE_KINDS = {"to": "route_unit", "fault": "violation", "kind": "evidence", "role": "role"}
"""The kind of the values of a data field whose name is not itself a kind."""


def refusal(
    lang: str | None, error: Exception, machine: MachineDefinition | str | None = None
) -> str:
    """What a person reading ``lang`` is told when casework refuses with ``error``: the
    common refusals in labels (unknown case, event not allowed here, a guard's need,
    a stale form, a time out of order, an unknown choice, a branch outside the
    token's); any other in its own words.
    The command line and JSON keep the error's identifiers and English."""
    if isinstance(error, CaseNotFound):
        return text(lang, "refused.unknown_case", case=error.case_id)
    if isinstance(error, GuardFailed):
        need = label(lang, "guard", error.condition, machine)
        if need == error.condition:
            need = error.requirement
        return text(
            lang, "refused.guard", event=label(lang, "event", error.event, machine), need=need
        )
    if isinstance(error, EventNotAllowed):
        state = label(lang, "state", error.state, machine)
        if not error.allowed:
            return text(lang, "refused.closed", state=state)
        said = text(
            lang,
            "refused.not_allowed",
            event=label(lang, "event", error.event, machine),
            state=state,
        )
        allowed = labelled(lang, "event", error.allowed, machine)
        return f"{said} {text(lang, 'refused.allowed_here', allowed=allowed)}"
    if isinstance(error, ConcurrentUpdate):
        return text(lang, "refused.stale")
    if isinstance(error, TimeOutOfOrder):
        said = str(error)
        if "future" in said:
            return text(lang, "refused.time_future")
        if "previous event" in said:
            return text(lang, "refused.time_before_case")
        return text(lang, "refused.invalid", detail=said)
    if isinstance(error, UnknownChoice | UnknownEvent):
        name = error.field or ""
        kind = _CHOICE_KINDS.get(name, name) if isinstance(error, UnknownChoice) else "event"
        value = error.value if isinstance(error, UnknownChoice) else error.event
        return text(
            lang,
            "refused.unknown_choice",
            value=value,
            field=label(lang, "field", name, machine),
            choices=labelled(lang, kind, error.choices, machine),
        )
    if isinstance(error, OutsideBranch):
        return text(lang, "refused.outside_branch", branch=error.branch)
    if isinstance(error, NaiveDatetime):
        return text(lang, "refused.naive_time", field=label(lang, "field", error.field, machine))
    if isinstance(error, BeyondAuthority):
        needed = label(lang, "role", error.needed) if error.needed else "?"
        return text(
            lang, "refused.beyond_authority", role=label(lang, "role", error.role), needed=needed
        )
    if isinstance(error, NotPermitted):
        return text(lang, "refused.not_permitted")
    if isinstance(error, NotAuthenticated):
        return text(lang, "refused.not_signed_in")
    if isinstance(error, ReadOnlyDatabase):
        return text(lang, "refused.read_only")
    if isinstance(error, StorageFailure):
        return text(lang, "refused.storage")
    if isinstance(error, InvalidInput):
        return _text_refusal(lang, error, machine) or text(
            lang, "refused.invalid", detail=str(error)
        )
    return text(lang, "refused.generic", detail=str(error))


def _text_refusal(
    lang: str | None, error: InvalidInput, machine: MachineDefinition | str | None
) -> str | None:
    """An empty or too long text field's refusal, naming the field by its label."""
    said, name = str(error), error.field
    if name is None:
        return None
    field = label(lang, "field", name, machine)
    if said == EMPTY_TEXT.format(field=name):
        return text(lang, "refused.required", field=field)
    long = LONG_TEXT.fullmatch(said)
    if long and long["field"] == name:
        return text(lang, "refused.too_long", field=field, limit=long["limit"])
    return None


__all__ = [
    "KINDS",
    "LANGUAGES",
    "catalogue",
    "label",
    "labelled",
    "language",
    "refusal",
    "text",
]
