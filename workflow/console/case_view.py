"""What a case's page shows, in the reader's language and zone: the customer and product
panel with the warranty standing, the actions (the likely next one first) with their
typed inputs, and the timeline as labelled fields in local times."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from casework.machines.definition import MANUAL_ESCALATION, RECLASSIFY, MachineDefinition
from casework.machines.warranty import WarrantyRules, period_end
from casework.storage.personal_sql import ERASED_TEXT
from casework.storage.records import CaseRecord, EventRecord
from casework.workflow.clock import parse_instant
from casework.workflow.console.actions import Action
from casework.workflow.console.forms import Input, Vocabulary, field_input
from casework.workflow.console.texts import TEXTS
from casework.workflow.display.times import local
from casework.workflow.labels import label

DASH = "\u2013"
"""What stands for no value."""
CONTACT_EVENTS = frozenset({"contact", "book_visit"})
"""Actions that reach the customer: none on an erased case."""
SIDE_EVENTS = frozenset({"note", "contact", "assign", "link", "attach", MANUAL_ESCALATION})
HIDDEN = frozenset({"cycle", "ended_by", "note", "rules_version"})
"""Event data the timeline leaves out (bookkeeping; the note has its own column)."""
LINKED = frozenset({"case", "repeat_of"})
"""Event data naming another case: shown as a link to it."""
_VALUE_KIND = {
    "remedy": "remedy", "fault": "violation", "priority": "priority", "category": "category",
    "channel": "channel", "clock": "clock", "timer": "timer", "kind": "evidence",
    "product_class": "product_class", "fault_class": "fault_class", "role": "role",
}  # fmt: skip


def erased(case: CaseRecord) -> bool:
    """Whether the customer of ``case`` was erased."""
    return case.customer == ERASED_TEXT


def shown_person(lang: str, value: str | None) -> str:
    """A customer's name or contact as a page shows it: an erased one says so."""
    if value == ERASED_TEXT:
        return TEXTS[lang]["erased_value"]
    return value or DASH


def masked(contact: str | None) -> str:
    """A contact as a confirmation shows it: ``138****0000``, ``w***@example.com``."""
    if not contact:
        return DASH
    if contact == ERASED_TEXT:
        return contact
    if "@" in contact:
        name, _, domain = contact.partition("@")
        return f"{name[:1]}***@{domain}"
    digits = [c for c in contact if c.isdigit()]
    if len(digits) >= 7:
        text = "".join(digits)
        return f"{text[:3]}****{text[-4:]}"
    return contact[:1] + "***"


@dataclass(frozen=True)
class Shown:
    """One labelled value: its text, a link or a time (ISO) where it is one."""

    label: str
    text: str
    href: str | None = None
    at: str | None = None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 16 or value[4:5] != "-":
        return None
    try:
        return parse_instant(value, "time")
    except Exception:  # not a time after all: shown as text
        return None


def shown_value(
    lang: str,
    machine: MachineDefinition,
    event: str,
    key: str,
    value: Any,
    zone: tzinfo,
    case_id: str = "",
) -> Shown:
    """Event data ``key=value`` as a person reads it (an attached file's digest as a
    link to the file, of case ``case_id``)."""
    name = label(lang, "field", f"{event}.{key}", machine)
    if name in (f"{event}.{key}", key):  # not in the catalogue: the console's own word
        name = TEXTS[lang].get(f"field.{key}", key)
    if key == "size" and isinstance(value, int):
        return Shown(name, f"{value / 1024:.1f} KB" if value >= 1024 else f"{value} B")
    if key == "digest" and case_id and isinstance(value, str):
        return Shown(name, value[:12], href=f"/cases/{case_id}/files/{value}")
    if key in LINKED and isinstance(value, str):
        return Shown(name, value[:8], href=f"/cases/{value}")
    if key == "level":
        return Shown(name, f"L{value}")
    if key == "late_by_s" and isinstance(value, int | float):
        from casework.workflow.console.standing import span

        return Shown(name, span(value, lang))
    moment = _moment(value)
    if moment is not None:
        return Shown(name, f"{local(moment, zone):%Y-%m-%d %H:%M}", at=moment.isoformat())
    if isinstance(value, bool):
        return Shown(name, TEXTS[lang]["yes" if value else "no"])
    if isinstance(value, Mapping):
        parts = [
            f"{label(lang, 'field', k, machine)}: {_plain(lang, machine, k, v)}"
            for k, v in value.items()
        ]
        return Shown(name, "\uff1b".join(parts) if lang == "zh" else "; ".join(parts))
    return Shown(name, _plain(lang, machine, key, value, event))


def _plain(lang: str, machine: MachineDefinition, key: str, value: Any, event: str = "") -> str:
    if isinstance(value, list | tuple):
        return "、".join(_plain(lang, machine, key, v, event) for v in value)
    if value in ("true", "false"):
        return TEXTS[lang]["yes" if value == "true" else "no"]
    kind = _VALUE_KIND.get(key)
    if key == "to" and event == "route":
        kind = "route_unit"
    if kind is not None and isinstance(value, str):
        return label(lang, kind, value, machine)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Row:
    """One event of the timeline, labelled."""

    seq: int
    at: str
    when: str
    event: str
    state: str
    actor: str
    note: str
    fields: tuple[Shown, ...]


def timeline(
    lang: str, machine: MachineDefinition, events: Sequence[EventRecord], zone: tzinfo
) -> list[Row]:
    """The events of a case as rows of labels and local times."""
    rows = []
    for e in events:
        data = {} if e.event == "open" else dict(e.data)
        shown = tuple(
            shown_value(lang, machine, e.event, k, v, zone, e.case_id)
            for k, v in data.items()
            if k not in HIDDEN and v not in (None, "")
        )
        rows.append(
            Row(
                e.seq, e.occurred_at.isoformat(), f"{local(e.occurred_at, zone):%Y-%m-%d %H:%M}",
                label(lang, "event", e.event, machine), label(lang, "state", e.to_state, machine),
                e.actor, str(data.get("note") or ""), shown,
            )
        )  # fmt: skip
    return rows


@dataclass(frozen=True)
class Form:
    """An action's form: the event, its label and its inputs."""

    event: str
    label: str
    inputs: tuple[Input, ...]
    note: bool
    """Whether the form also takes a free note (the event's data has none of its own)."""


@dataclass(frozen=True)
class Menu:
    """The actions of a case: the likely next one, the others."""

    primary: Form | None
    others: tuple[Form, ...] = field(default=())

    def get(self, event: str) -> Form | None:
        """The form of ``event``."""
        found = [f for f in (self.primary, *self.others) if f is not None and f.event == event]
        return found[0] if found else None


def _forward(machine: MachineDefinition, state: str, event: str) -> bool:
    """Whether ``event`` moves the case on along the chart (to a later, open state)."""
    order = machine.states
    for rule in machine.rules.get((state, event), ()):
        target = rule.target
        if target in machine.final_states or target not in order or state not in order:
            continue
        if order.index(target) > order.index(state):
            return True
    return False


def menu(
    lang: str,
    machine: MachineDefinition,
    case: CaseRecord,
    found: Sequence[Action],
    vocabulary: Vocabulary,
) -> Menu:
    """The forms of the actions ``found`` for ``case``: the first that moves the case on
    along its chart is the likely next one; an erased case offers no contact actions."""
    choices = {f"reason.{k}": v for k, v in _choice_texts(lang).items()}
    choices |= {f"kind.{k}": v for k, v in _choice_texts(lang).items()}
    forms = []
    for action in found:
        if erased(case) and action.event in CONTACT_EVENTS:
            continue
        inputs = tuple(
            field_input(lang, machine, action.event, name, action.requirements, vocabulary, choices)
            for name in action.fields
            if not (action.event == RECLASSIFY and name == "reason")
        )
        if action.event == RECLASSIFY:
            blank = ("", DASH)
            reason = Input("reason", "text", label(lang, "field", "reason", machine))
            inputs = (
                *(Input(i.name, i.kind, i.label, (blank, *i.choices)) for i in inputs),
                reason,
            )
        forms.append(
            Form(
                action.event,
                label(lang, "event", action.event, machine),
                inputs,
                "note" not in action.fields,
            )
        )
    primary = next((f for f in forms if _forward(machine, case.state, f.event)), None)
    others = tuple(f for f in forms if f is not primary)
    return Menu(primary, others)


def _choice_texts(lang: str) -> dict[str, str]:
    texts = TEXTS[lang]
    return {k.removeprefix("choice."): v for k, v in texts.items() if k.startswith("choice.")}


@dataclass(frozen=True)
class Panel:
    """The customer and product panel of a case page."""

    rows: tuple[Shown, ...]
    warranty: str | None


PANEL_ATTRIBUTES = ("address", "product", "brand", "serial_number", "order_number",
                    "purchase_date", "product_class", "fault_class")  # fmt: skip


def panel(
    lang: str, machine: MachineDefinition, case: CaseRecord, rules: WarrantyRules, now: datetime
) -> Panel:
    """The customer (contact, address) and the product (brand, serial, purchase date)
    of ``case``, and where the three guarantees stand for it."""
    rows = [Shown(label(lang, "field", "customer", machine), shown_person(lang, case.customer)),
            Shown(label(lang, "field", "contact", machine),
                  shown_person(lang, case.contact))]  # fmt: skip
    for name in PANEL_ATTRIBUTES:
        value = case.attributes.get(name)
        if value == ERASED_TEXT:
            value = TEXTS[lang]["erased_value"]
        if value not in (None, ""):
            rows.append(Shown(label(lang, "field", name, machine),
                              _plain(lang, machine, name, value)))  # fmt: skip
    rows.append(Shown(label(lang, "field", "priority", machine),
                      label(lang, "priority", case.priority, machine)))  # fmt: skip
    return Panel(tuple(rows), _warranty(lang, case, rules, now))


def _warranty(lang: str, case: CaseRecord, rules: WarrantyRules, now: datetime) -> str | None:
    sold_text = case.attributes.get("purchase_date")
    if not isinstance(sold_text, str):
        return None
    try:
        sold = date.fromisoformat(sold_text)
    except ValueError:
        return None
    product = case.attributes.get("product_class")
    months = rules.repair_months.get(str(product or ""), rules.repair_months.get("*", 12))
    ends = {
        "return": period_end(sold, rules.zone, days=rules.return_days),
        "exchange": period_end(sold, rules.zone, days=rules.exchange_days),
        "repair": period_end(sold, rules.zone, months=months),
    }
    texts = TEXTS[lang]
    parts = []
    for remedy, end in ends.items():
        # a period ends at 24:00 of its last day: that day is the last one shown
        last = end.date() - timedelta(days=1)
        day = f"{last:%m-%d}" if last.year == now.year else f"{last:%Y-%m-%d}"
        word = "warranty_until" if end > now else "warranty_ended"
        parts.append(texts[word].format(remedy=label(lang, "remedy", remedy), day=day))
    return ("\uff0c" if lang == "zh" else ", ").join(parts)
