"""Reclassifying a case (``reclassify``): the priority, category, channel or customer
tier its SLA targets depend on changes; the event records the values before, so the
history says what changed and why each later target is what it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from casework.machines.definition import RECLASSIFIABLE, MachineDefinition
from casework.storage.records import CaseRecord
from casework.workflow import validation
from casework.workflow.cases.intake import FIELDS, checked_value
from casework.workflow.config import Settings
from casework.workflow.errors import InvalidInput
from casework.workflow.transitions import profile_of

WAS = "was"
"""The data key of a ``reclassify`` that holds the values it replaced."""


def reclassify_data(
    settings: Settings, definition: MachineDefinition, case: CaseRecord, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The data of a ``reclassify`` of ``case``: each given value checked against the
    configured choices (a tier only where the case's machine declares the attribute),
    at least one different from the case's, and ``was`` holding the values they
    replace. Other keys (``reason``, ``note``) are kept as given."""
    given = {k: data[k] for k in RECLASSIFIABLE if data.get(k) not in (None, "")}
    if not given:
        raise InvalidInput(
            "reclassify needs one or more of priority=, category=, channel=, tier=",
            field="priority",
        )
    if "tier" in given and "tier" not in definition.attributes:
        raise InvalidInput(
            f"machine {definition.name} v{definition.version} has no tier attribute",
            field="tier",
        )
    checked = {
        name: checked_value(FIELDS[name], value, settings)
        if name in FIELDS
        else validation.text(value, name, max_chars=64)
        for name, value in given.items()
    }
    now = profile_of(case)
    changed = {k: v for k, v in checked.items() if now.get(k) != v}
    if not changed:
        held = ", ".join(f"{k}={v}" for k, v in checked.items())
        raise InvalidInput(f"case {case.id} already has {held}", field=next(iter(checked)))
    others = {k: v for k, v in data.items() if k not in RECLASSIFIABLE and k != WAS}
    return {**others, **changed, WAS: {k: now.get(k) for k in changed}}
