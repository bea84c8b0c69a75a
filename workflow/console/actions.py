"""What a person may do to a case now: the events allowed in its state, each with the
data fields its guards ask for (read from the guards' own requirements)."""

from __future__ import annotations

from dataclasses import dataclass

from casework.machines.definition import MANUAL_ESCALATION, RECLASSIFIABLE, RECLASSIFY
from casework.machines.fold import WAIT_REASONS
from casework.storage.records import CaseRecord
from casework.workflow.engine import Engine
from casework.workflow.transitions import allowed_now


@dataclass(frozen=True)
class Action:
    """One event a form can record: its name, the data fields it needs, what they mean."""

    event: str
    fields: tuple[str, ...]
    requirements: tuple[str, ...]


def actions(engine: Engine, case: CaseRecord) -> list[Action]:
    """The events that may be fired on ``case`` now, in the machine's order."""
    definition = engine.registry.get(case.machine, case.machine_version)
    found = []
    for event in allowed_now(definition, case):
        rules = definition.rules.get((case.state, event), ())
        conditions = [c for rule in rules for c in rule.conditions]
        needs = [c.requirement for c in conditions]
        fields = [f for c in conditions for f in c.data_fields]
        if definition.handover is not None and event == definition.handover[0]:
            fields.append(definition.handover[1])
        if event == "wait":
            fields.append("reason")
            needs.append(f"data reason={' or '.join(WAIT_REASONS)}")
        if event == MANUAL_ESCALATION:
            fields.append("reason")
            needs.append("data reason=<why it goes up a level now>")
        if event == RECLASSIFY:
            fields += [f for f in RECLASSIFIABLE if f != "tier" or f in definition.attributes]
            fields.append("reason")
            needs.append("one or more of the new priority, category, channel or tier")
        found.append(Action(event, tuple(dict.fromkeys(fields)), tuple(needs)))
    return found
