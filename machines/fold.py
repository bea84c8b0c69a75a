"""Folding a case's events into its state: the one rule for both firing and replay."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from machines.definition import Allowed, Decision, MachineDefinition

OPEN_EVENT = "open"
"""The first event of every case: it enters the machine's initial state."""


@dataclass(frozen=True)
class Folded:
    """What a case's history adds up to after ``version`` events."""

    state: str
    version: int
    owner: str
    escalation_level: int = 0
    facts: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def guard_facts(self) -> dict[str, Any]:
        """The facts guards see: remembered data plus the current owner."""
        return {**self.facts, "owner": self.owner}


def opened(definition: MachineDefinition, owner: str) -> Folded:
    """The fold after the opening event."""
    return Folded(state=definition.initial_state, version=1, owner=owner)


def step(
    definition: MachineDefinition, folded: Folded, event: str, data: Mapping[str, Any]
) -> tuple[Decision, Folded]:
    """Apply one event: the machine's decision and, if allowed, the new fold.

    A decision other than :class:`Allowed` returns the fold unchanged.
    """
    guarded = (folded.state, event) in definition.guarded
    facts = folded.guard_facts() if guarded else folded.facts
    decision = definition.decide(folded.state, event, data, facts)
    if not isinstance(decision, Allowed):
        return decision, folded
    owner = folded.owner
    if definition.handover is not None and event == definition.handover[0]:
        owner = str(data[definition.handover[1]])
    facts = folded.facts
    remembered = [key for key in definition.remembered.get(event, ()) if key in data]
    if remembered:
        facts = MappingProxyType({**facts, **{key: data[key] for key in remembered}})
    return decision, Folded(
        decision.target, folded.version + 1, owner, folded.escalation_level, facts
    )
