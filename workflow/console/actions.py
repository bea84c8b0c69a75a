"""What a person may do to a case now: the events allowed in its state, each with the
data fields its guards ask for (read from the guards' own requirements)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from machines.definition import Condition
from machines.fold import WAIT_REASONS
from storage.records import CaseRecord
from workflow.engine import Engine

_FIELD = re.compile(r"data (\w+)=")


def _could_pass(conditions: tuple[Condition, ...], case: CaseRecord) -> bool:
    """Whether a rule's guards could pass: a guard on the event's data may, given the
    data; a guard on the case's facts is asked now."""
    return all(
        _FIELD.search(c.requirement) is not None or c.holds({}, case.facts) for c in conditions
    )


@dataclass(frozen=True)
class Action:
    """One event a form can record: its name, the data fields it needs, what they mean."""

    event: str
    fields: tuple[str, ...]
    requirements: tuple[str, ...]


def actions(engine: Engine, case: CaseRecord) -> list[Action]:
    """The events that may be fired on ``case`` now, in the machine's order."""
    definition = engine.registry.get(case.machine, case.machine_version)
    events = definition.allowed_events(case.state)
    if case.state not in definition.final_states:
        waiting = case.sla.get("waiting") is not None
        events += tuple(e for e in definition.agent_events if (e == "resume") == waiting)
    found = []
    for event in events:
        rules = definition.rules.get((case.state, event), ())
        if rules and not any(_could_pass(rule.conditions, case) for rule in rules):
            continue  # a guard on the case's own facts already says no (reopen, say)
        needs = [c.requirement for rule in rules for c in rule.conditions]
        fields = [m for need in needs for m in _FIELD.findall(need)]
        if definition.handover is not None and event == definition.handover[0]:
            fields.append(definition.handover[1])
        if event == "wait":
            fields.append("reason")
            needs.append(f"data reason={' or '.join(WAIT_REASONS)}")
        found.append(Action(event, tuple(dict.fromkeys(fields)), tuple(needs)))
    return found
