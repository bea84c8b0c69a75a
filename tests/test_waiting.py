"""A wait belongs to the step it was declared in: a change of state ends it, recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from casework.machines.timers import TIMER_EVENTS
from casework.workflow import Engine, FixedClock
from tests.support import open_sample

H = timedelta(hours=1)

# (the events that bring the case to the state it waits in, the event that moves it on,
#  the clock that must count afterwards, or None where the case is closed)
PATHS = [
    ((), "apologise", "resolution"),
    (("apologise",), "confirm_needs", "resolution"),
    (("apologise", "confirm_needs"), "resolve", "follow_up"),
    (("apologise", "confirm_needs", "resolve"), "reject_solution", "resolution"),
    (("apologise", "confirm_needs", "resolve"), "follow_up", None),
    (("apologise",), "withdraw", None),
]
DATA = {"resolve": {"solution": "new part"}, "follow_up": {"satisfaction": 4}}


@pytest.mark.parametrize(("before", "moving", "counting"), PATHS)
@pytest.mark.parametrize("reason", ["customer", "part"])
def test_a_change_of_state_ends_the_wait(
    engine: Engine,
    clock: FixedClock,
    before: tuple[str, ...],
    moving: str,
    counting: str | None,
    reason: str,
) -> None:
    """After the move nothing waits, every running clock counts and has its deadline,
    and the history holds the ``resume`` that ended the wait, naming the event."""
    case_id = open_sample(engine)
    for event in before:
        clock.advance(H)
        engine.fire(case_id, event, actor="li.na", data=DATA.get(event))
    clock.advance(H)
    engine.fire(case_id, "wait", actor="li.na", data={"reason": reason})
    clock.advance(3 * H)
    case = engine.fire(case_id, moving, actor="li.na", data=DATA.get(moving))

    assert case.sla["waiting"] is None
    running = [c for c in case.sla["clocks"] if c["running"]]
    assert all(c["counting_since"] == clock.now().isoformat(timespec="microseconds")
               for c in running)  # fmt: skip
    clocks = {d["clock"] for d in case.deadlines if d["clock"] not in TIMER_EVENTS}
    assert clocks == {c["name"] for c in running}  # (waiting on a part set a call too)
    if counting is not None:
        assert counting in {c["name"] for c in running}
    history = engine.history(case_id)
    assert [(e.event, e.data) for e in history[-2:]] == [
        ("resume", {"ended_by": moving}),
        (moving, DATA.get(moving, {})),
    ]
    assert history[-2].occurred_at == history[-1].occurred_at == clock.now()
    assert engine.get(case_id) == case
    assert engine.verify().ok


def test_an_event_that_keeps_the_state_keeps_the_wait(engine: Engine, clock: FixedClock) -> None:
    """A note or a contact while waiting changes nothing about the wait."""
    case_id = open_sample(engine)
    engine.fire(case_id, "wait", actor="li.na", data={"reason": "part"})
    clock.advance(H)
    case = engine.fire(case_id, "contact", actor="li.na", data={"how": "phone"})
    assert case.sla["waiting"] == "part"
    assert [e.event for e in engine.history(case_id)][-1] == "contact"
