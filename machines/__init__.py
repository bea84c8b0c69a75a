"""Pure domain definitions: state machines, their compiled tables and the case fold.

Nothing here does I/O or reads the clock.
"""

from casework.machines.after_sales import COMPLAINT_V2, ComplaintChartV2
from casework.machines.complaint import COMPLAINT_V1, ComplaintChart
from casework.machines.definition import (
    AGENT_EVENTS,
    ENGINE_EVENTS,
    OPEN_EVENT,
    SYSTEM_EVENTS,
    Allowed,
    AttributeSpec,
    Blocked,
    Checks,
    Condition,
    Decision,
    MachineDefinition,
    NotAllowed,
    Relations,
    RepeatRule,
    Rule,
)
from casework.machines.fold import (
    CaseRules,
    Folded,
    opened,
    step,
)
from casework.machines.registry import MachineRegistry, UnknownMachineError

__all__ = [
    "AGENT_EVENTS",
    "COMPLAINT_V1",
    "COMPLAINT_V2",
    "ENGINE_EVENTS",
    "OPEN_EVENT",
    "SYSTEM_EVENTS",
    "Allowed",
    "AttributeSpec",
    "Blocked",
    "CaseRules",
    "Checks",
    "ComplaintChart",
    "ComplaintChartV2",
    "Condition",
    "Decision",
    "Folded",
    "MachineDefinition",
    "MachineRegistry",
    "NotAllowed",
    "Relations",
    "RepeatRule",
    "Rule",
    "UnknownMachineError",
    "opened",
    "step",
]
