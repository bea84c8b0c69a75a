"""The inputs of an event's form, derived from what the machine declares: its guards'
requirements (``data to=store, ... or procurement``, ``<whole number 1 to 5>``,
``<yuan>``, ``(... optional)``), its ``time_fields`` and the vocabularies casework
keeps (channels, categories, priorities, partner violations, the partner registry).
A time field is a ``datetime-local`` input read in the viewer's zone; a field with
known values a ``select``; yes or no a checkbox; numbers and money number inputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from casework.machines.definition import MachineDefinition
from casework.machines.partner_rules import PARTNER_RULES
from casework.machines.warranty import FAULT_CLASSES, PRODUCT_CLASSES
from casework.workflow.errors import InvalidInput
from casework.workflow.labels import label

YES_NO = frozenset({"true", "false", "yes", "no"})
"""Known values that make a field a checkbox."""
_CHOICE_KIND = {"to": "route_unit", "fault": "violation", "remedy": "remedy",
                "channel": "channel", "category": "category", "priority": "priority",
                "product_class": "product_class", "fault_class": "fault_class"}  # fmt: skip
"""The label kind of a field's values, where the field's name is not the kind."""
_LISTED = re.compile(r"(\w+(?:(?:,\s*|\s+or\s+)\w+(?!\w*=))*)")


@dataclass(frozen=True)
class Input:
    """One input of a form: its field, how it is typed, its label and known values."""

    name: str
    kind: str
    """``datetime``, ``date``, ``select``, ``checkbox``, ``number``, ``money`` or ``text``."""
    label: str
    choices: tuple[tuple[str, str], ...] = ()
    """(value, label) of a ``select``."""
    required: bool = False
    low: int | None = None
    high: int | None = None


def _after(requirement: str, name: str) -> str | None:
    """What follows ``name=`` in a requirement (``None``: not named)."""
    found = re.search(rf"(?<![\w.]){re.escape(name)}=", requirement)
    return None if found is None else requirement[found.end() :]


def _listed(requirement: str, name: str) -> tuple[str, ...]:
    """The values a requirement lists for ``name`` (``remedy=return, exchange or
    repair``; ``fixed=true or fixed=false``)."""
    values: list[str] = []
    for match in re.finditer(rf"(?<![\w.<]){re.escape(name)}=(?=\w)", requirement):
        listed = _LISTED.match(requirement, match.end())
        if listed is not None:
            values += [v for v in re.split(r",\s*|\s+or\s+", listed.group(1)) if v]
    return tuple(dict.fromkeys(values))


def _placeholder(requirement: str, name: str) -> str:
    """The ``<...>`` describing ``name``'s value (``parts=, travel=<yuan>``: the next)."""
    rest = _after(requirement, name)
    if rest is None:
        return ""
    found = re.match(r"[\s,\w=]*?<([^>]*)>", rest) if not rest[:1].isalnum() else None
    return "" if found is None else found.group(1)


def _optional(requirement: str, name: str) -> bool:
    """Whether ``name`` is named inside a parenthesis (an optional field)."""
    at = re.search(rf"(?<![\w.]){re.escape(name)}=", requirement)
    if at is None:
        return True
    before = requirement[: at.start()]
    return before.count("(") > before.count(")") or before.count("<") > before.count(">")


@dataclass(frozen=True)
class Vocabulary:
    """The known values of the fields that do not list them in a guard."""

    channels: Sequence[str]
    categories: Sequence[str]
    priorities: Sequence[str]
    partners: Sequence[tuple[str, str]]
    """(id, name) of the partner registry; empty: the partner is typed."""

    def values(self, name: str) -> tuple[str, ...] | None:
        """The values of field ``name`` known here."""
        known: dict[str, Sequence[str]] = {
            "channel": self.channels, "category": self.categories,
            "priority": self.priorities, "fault": tuple(PARTNER_RULES.deductions),
            "product_class": tuple(t.id for t in PRODUCT_CLASSES.terms),
            "fault_class": tuple(t.id for t in FAULT_CLASSES.terms),
        }  # fmt: skip
        if name == "partner" and self.partners:
            return tuple(p for p, _ in self.partners)
        found = known.get(name)
        return None if found is None else tuple(found)


def field_input(
    lang: str,
    machine: MachineDefinition,
    event: str,
    name: str,
    requirements: Sequence[str],
    vocabulary: Vocabulary,
    choice_label: Mapping[str, str] | None = None,
) -> Input:
    """The input of data field ``name`` of ``event``'s form."""
    said = " ".join(requirements)
    title = label(lang, "field", f"{event}.{name}", machine)
    required = bool(said) and not _optional(said, name)
    if name in machine.time_fields.get(event, ()) or "ISO time" in _placeholder(said, name):
        return Input(name, "datetime", title, required=required)
    listed = _listed(said, name) or vocabulary.values(name)
    if listed and set(listed) <= YES_NO:
        return Input(name, "checkbox", title)
    if listed:
        kind = _CHOICE_KIND.get(name, name)
        partners = dict(vocabulary.partners)

        def shown(value: str) -> str:
            if name == "partner":
                return partners.get(value, value)
            if choice_label and f"{name}.{value}" in choice_label:
                return choice_label[f"{name}.{value}"]
            return label(lang, kind, value, machine)

        return Input(name, "select", title, tuple((v, shown(v)) for v in listed), required)
    hint = _placeholder(said, name)
    bounds = re.search(r"(\d+) to (\d+)", hint)
    if "whole number" in hint:
        low, high = (int(bounds.group(1)), int(bounds.group(2))) if bounds else (None, None)
        return Input(name, "number", title, required=required, low=low, high=high)
    if re.fullmatch(r"[A-Z]{3}", hint):  # a currency code: the one the machine names
        return Input(name, "select", title, ((hint, hint),), required)
    if "yuan" in hint:
        return Input(name, "money", title, required=required, low=0)
    return Input(name, "text", title, required=required)


def local_instant(value: str, zone: tzinfo, field: str) -> str:
    """A ``datetime-local`` value (``2026-12-06T09:00``) read in the viewer's ``zone``,
    as ISO 8601 with its offset; a value that carries an offset is kept as it is."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field}: not a date and time: {text!r}", field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat()


def form_data(
    form: Mapping[str, str], prefix: str, inputs: Sequence[Input], zone: tzinfo
) -> dict[str, Any]:
    """The data a form sent (fields ``prefix.NAME``): times read in ``zone`` with their
    offset, checkboxes as ``true``/``false``, whole numbers as numbers, blanks left
    out."""
    kinds = {i.name: i.kind for i in inputs}
    values: dict[str, Any] = {}
    for key, value in form.items():
        if not key.startswith(prefix) or not value.strip():
            continue
        name, text = key.removeprefix(prefix), value.strip()
        kind = kinds.get(name)
        if kind == "datetime":
            values[name] = local_instant(text, zone, name)
        elif kind == "money":
            values[name] = text
        else:
            values[name] = int(text) if text.lstrip("-").isdigit() else text
    return values
