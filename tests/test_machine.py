"""The standard complaint machine: its chart, its compiled table, and their equivalence."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statemachine import State, StateChart
from statemachine.exceptions import TransitionNotAllowed

from casework.machines import (
    COMPLAINT_V1,
    Allowed,
    Blocked,
    ComplaintChart,
    MachineDefinition,
    MachineRegistry,
    NotAllowed,
    UnknownMachineError,
)
from casework.machines.diagram import dot, mermaid

D = COMPLAINT_V1

HAPPY_PATH = [
    ("received", "apologise", {}, {}, "apologised"),
    ("apologised", "confirm_needs", {}, {}, "needs_confirmed"),
    ("needs_confirmed", "resolve", {"solution": "replace the unit"}, {}, "resolved"),
    ("resolved", "reject_solution", {}, {}, "needs_confirmed"),
    ("resolved", "follow_up", {"satisfaction": 1}, {}, "followed_up"),
    ("resolved", "follow_up", {"satisfaction": 5}, {}, "followed_up"),
    ("followed_up", "reopen", {}, {"satisfaction": 2}, "needs_confirmed"),
    ("received", "withdraw", {}, {}, "withdrawn"),
    ("apologised", "withdraw", {}, {}, "withdrawn"),
    ("needs_confirmed", "withdraw", {}, {}, "withdrawn"),
    ("resolved", "withdraw", {}, {}, "withdrawn"),
    ("received", "note", {"note": "called back"}, {}, "received"),
    ("followed_up", "contact", {"kind": "call"}, {}, "followed_up"),
    ("apologised", "assign", {"to": "wang.wei"}, {"owner": "li.na"}, "apologised"),
]


@pytest.mark.parametrize(("state", "event", "data", "facts", "target"), HAPPY_PATH)
def test_every_transition_reaches_its_target(
    state: str, event: str, data: dict[str, Any], facts: dict[str, Any], target: str
) -> None:
    """Each transition of the six steps and the ways back and out lands where it should."""
    assert D.decide(state, event, data, facts) == Allowed(target)


GUARD_FAILURES = [
    ("needs_confirmed", "resolve", {}, {}, "solution_given"),
    ("needs_confirmed", "resolve", {"solution": "   "}, {}, "solution_given"),
    ("resolved", "follow_up", {}, {}, "satisfaction_in_range"),
    ("resolved", "follow_up", {"satisfaction": 0}, {}, "satisfaction_in_range"),
    ("resolved", "follow_up", {"satisfaction": 6}, {}, "satisfaction_in_range"),
    ("resolved", "follow_up", {"satisfaction": "4"}, {}, "satisfaction_in_range"),
    ("resolved", "follow_up", {"satisfaction": True}, {}, "satisfaction_in_range"),
    ("followed_up", "reopen", {}, {"satisfaction": 3}, "last_follow_up_unhappy"),
    ("followed_up", "reopen", {}, {}, "last_follow_up_unhappy"),
    ("received", "note", {}, {}, "note_given"),
    ("received", "assign", {}, {"owner": "li.na"}, "new_owner_given"),
    ("received", "assign", {"to": "li.na"}, {"owner": "li.na"}, "new_owner_given"),
]


@pytest.mark.parametrize(("state", "event", "data", "facts", "condition"), GUARD_FAILURES)
def test_a_failing_guard_is_named(
    state: str, event: str, data: dict[str, Any], facts: dict[str, Any], condition: str
) -> None:
    """A refused event names the condition that failed and says what it needs."""
    decision = D.decide(state, event, data, facts)
    assert isinstance(decision, Blocked)
    assert decision.condition == condition
    assert decision.requirement


def test_an_event_not_allowed_lists_the_allowed_ones() -> None:
    """An event with no transition from the state is refused with the allowed events."""
    decision = D.decide("received", "resolve", {"solution": "x"}, {})
    assert decision == NotAllowed(("apologise", "withdraw", "note", "contact", "assign"))


def test_withdrawn_is_final_and_allows_nothing() -> None:
    """A withdrawn case is closed: no event, not even a note, applies."""
    assert D.final_states == {"withdrawn"}
    assert D.allowed_events("withdrawn") == ()
    assert isinstance(D.decide("withdrawn", "note", {"note": "x"}, {}), NotAllowed)


def test_the_chart_raises_on_an_event_without_transition() -> None:
    """The chart's settings are chosen: an invalid event raises, it is never ignored."""
    chart = ComplaintChart()
    with pytest.raises(TransitionNotAllowed):
        chart.send("resolve", data={"solution": "x"}, facts={})
    with pytest.raises(TransitionNotAllowed):
        chart.send("no_such_event", data={}, facts={})
    assert chart.configuration_values == {"received"}


class _Exploding(ComplaintChart):
    def before_apologise(self) -> None:
        raise RuntimeError("callback failed")


def _raising_guard(data: dict[str, Any], facts: dict[str, Any]) -> bool:
    raise RuntimeError("guard failed")


class _RaisingGuard(StateChart[Any]):
    allow_event_without_transition = ComplaintChart.allow_event_without_transition
    catch_errors_as_events = ComplaintChart.catch_errors_as_events
    atomic_configuration_update = ComplaintChart.atomic_configuration_update
    a = State(initial=True)
    b = State(final=True)
    go = a.to(b, cond=_raising_guard)


def test_an_exception_in_a_callback_aborts_the_transition() -> None:
    """With the complaint chart's settings, a failing callback propagates and moves nothing."""
    chart = _Exploding()
    with pytest.raises(RuntimeError, match="callback failed"):
        chart.send("apologise", data={}, facts={})
    assert chart.configuration_values == {"received"}
    guarded = _RaisingGuard()
    with pytest.raises(RuntimeError, match="guard failed"):
        guarded.send("go", data={}, facts={})
    assert guarded.configuration_values == {"a"}


STATES = st.sampled_from(D.states)
EVENTS = st.sampled_from([*D.events, "bogus"])
DATA = st.fixed_dictionaries(
    {},
    optional={
        "solution": st.one_of(st.text(max_size=3), st.integers()),
        "satisfaction": st.one_of(st.integers(-1, 7), st.booleans(), st.text(max_size=1)),
        "note": st.one_of(st.text(max_size=3), st.none()),
        "to": st.sampled_from(["li.na", "wang.wei", "", 5]),
    },
)
FACTS = st.fixed_dictionaries(
    {"owner": st.sampled_from(["li.na", "wang.wei"])},
    optional={"satisfaction": st.integers(0, 6)},
)


@settings(max_examples=400, deadline=None)
@given(state=STATES, event=EVENTS, data=DATA, facts=FACTS)
def test_compiled_table_decides_exactly_as_the_chart(
    state: str, event: str, data: dict[str, Any], facts: dict[str, Any]
) -> None:
    """For any state, event and data, the table and python-statemachine agree."""
    chart = ComplaintChart(start_value=state)
    try:
        chart.send(event, data=data, facts=facts)
        expected: str | None = next(iter(chart.configuration_values))
    except TransitionNotAllowed:
        expected = None
    decision = D.decide(state, event, data, facts)
    got = decision.target if isinstance(decision, Allowed) else None
    assert got == expected


def test_registry_keeps_versions_apart() -> None:
    """A case keeps its version: the registry returns exactly the one asked for."""

    class V2(ComplaintChart):
        pass

    v2 = MachineDefinition(name="complaint", version=2, chart=V2)
    registry = MachineRegistry([COMPLAINT_V1, v2])
    assert registry.get("complaint", 1) is COMPLAINT_V1
    assert registry.get("complaint") is v2
    with pytest.raises(UnknownMachineError, match="complaint v3"):
        registry.get("complaint", 3)
    with pytest.raises(ValueError, match="new version"):
        registry.register(MachineDefinition(name="complaint", version=1, chart=V2))


def test_diagrams_name_every_transition() -> None:
    """The Mermaid and DOT texts show every rule with its guards."""
    text = mermaid(D)
    assert text.startswith("stateDiagram-v2")
    assert "needs_confirmed --> resolved: resolve [solution_given]" in text
    assert "withdrawn --> [*]" in text
    assert '"resolved" -> "followed_up"' in dot(D)
