"""A second machine for the tests: a warranty repair order with its own states, events,
SLA clock and ladder, no intake channel or category, and no waiting."""

from __future__ import annotations

from typing import Any

from statemachine import State, StateChart

from casework.machines import AttributeSpec, MachineDefinition


class RepairChart(StateChart[Any]):
    """A repair order: booked in, diagnosed, repaired, handed back (or cancelled)."""

    allow_event_without_transition = False
    catch_errors_as_events = False
    atomic_configuration_update = True

    booked = State("Booked", initial=True)
    diagnosed = State("Diagnosed")
    repaired = State("Repaired")
    returned = State("Returned", final=True)
    cancelled = State("Cancelled", final=True)

    diagnose = booked.to(diagnosed)
    repair = diagnosed.to(repaired)
    hand_back = repaired.to(returned)
    cancel = booked.to(cancelled) | diagnosed.to(cancelled)


REPAIR_POLICY = {
    "name": "workshop",
    "clocks": {
        "turnaround": {"runs_in": ["booked", "diagnosed"], "within_s": 72 * 3600},
        "pickup": {"runs_in": ["repaired"], "within_s": 24 * 3600, "warn_at": None},
    },
    "ladder": [
        {"level": 1, "name": "workshop lead", "after_s": 0,
         "recipients": {"*": ["workshop-lead@example.com"]}},
    ],
}  # fmt: skip

REPAIR_V1 = MachineDefinition(
    name="repair",
    version=1,
    chart=RepairChart,
    title="Warranty repair order",
    attributes={"serial_number": AttributeSpec(required=True, max_length=80)},
    sla=REPAIR_POLICY,
    intake=(),
    agent_events=(),
)
