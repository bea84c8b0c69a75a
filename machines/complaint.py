"""The standard complaint machine: the six handling steps of the domain, version 1.

``received -> apologised -> needs_confirmed -> resolved -> followed_up``, with the ways
back (the customer rejects the solution; a follow-up finds them unhappy and the case
reopens) and out (the customer withdraws). ``note``, ``contact`` and ``assign`` change
no state but belong in the history.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce
from operator import or_
from typing import Any

from statemachine import State, StateChart
from statemachine.transition_list import TransitionList

from casework.machines.definition import AttributeSpec, MachineDefinition
from casework.machines.sla import DEFAULT_DOCUMENT

LOW_SATISFACTION = 2
"""A follow-up score at or below this lets the case be reopened."""


def solution_given(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs the agreed solution: data solution=<non-empty text>"""
    solution = data.get("solution")
    return isinstance(solution, str) and bool(solution.strip())


def satisfaction_in_range(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs the customer's satisfaction score: data satisfaction=<whole number 1 to 5>"""
    score = data.get("satisfaction")
    return isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 5


def last_follow_up_unhappy(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """only after a follow-up with a low satisfaction score (2 or less)"""
    score = facts.get("satisfaction")
    return isinstance(score, int) and score <= LOW_SATISFACTION


def note_given(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs the note text: data note=<non-empty text>"""
    note = data.get("note")
    return isinstance(note, str) and bool(note.strip())


def new_owner_given(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs the new owner, other than the current one: data to=<agent>"""
    to = data.get("to")
    return isinstance(to, str) and bool(to.strip()) and to != facts.get("owner")


def _stay_in(states: tuple[State, ...], **guards: Any) -> TransitionList:
    """An event that keeps the case where it is, from each of ``states``."""
    transitions: TransitionList = reduce(
        or_, (state.to.itself(internal=True, **guards) for state in states)
    )
    return transitions


class ComplaintChart(StateChart[Any]):
    """Complaint handling, version 1."""

    # Deliberate settings (StateChart's defaults are the opposite): an event with no
    # transition raises, and an exception in a callback aborts the transition.
    allow_event_without_transition = False
    catch_errors_as_events = False
    atomic_configuration_update = True
    enable_self_transition_entries = False

    received = State("Received", initial=True)
    apologised = State("Apologised")
    needs_confirmed = State("Needs confirmed")
    resolved = State("Resolved")
    followed_up = State("Followed up")
    withdrawn = State("Withdrawn", final=True)

    apologise = received.to(apologised)
    confirm_needs = apologised.to(needs_confirmed)
    resolve = needs_confirmed.to(resolved, cond=solution_given)
    reject_solution = resolved.to(needs_confirmed)
    follow_up = resolved.to(followed_up, cond=satisfaction_in_range)
    reopen = followed_up.to(needs_confirmed, cond=last_follow_up_unhappy)
    withdraw = (
        received.to(withdrawn)
        | apologised.to(withdrawn)
        | needs_confirmed.to(withdrawn)
        | resolved.to(withdrawn)
    )
    _open = (received, apologised, needs_confirmed, resolved, followed_up)
    note = _stay_in(_open, cond=note_given)
    contact = _stay_in(_open)
    assign = _stay_in(_open, cond=new_owner_given)


COMPLAINT_V1 = MachineDefinition(
    name="complaint",
    version=1,
    chart=ComplaintChart,
    title="Customer complaint, six handling steps",
    remembered={"follow_up": ("satisfaction",)},
    handover=("assign", "to"),
    resting=frozenset({"followed_up"}),
    attributes={
        "product": AttributeSpec(),
        "brand": AttributeSpec(),
        "serial_number": AttributeSpec(max_length=80),
        "purchase_date": AttributeSpec(kind="date"),
        "order_number": AttributeSpec(max_length=80),
        # how the customer is told (email, sms or none: consent withdrawn) and in what
        # language (zh or en); absent: the [notify] defaults
        "notify": AttributeSpec(max_length=5),
        "language": AttributeSpec(max_length=5),
    },
    sla=DEFAULT_DOCUMENT,
)
"""The standard complaint machine, registered like any other through ``casework.machines``."""
