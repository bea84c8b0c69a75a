"""Hand-overs and breaches are charged to the people they belong to."""

from __future__ import annotations

from datetime import timedelta

from casework.workflow import Engine, FixedClock
from casework.workflow.display.periods import Period
from casework.workflow.reports.business import sla_report
from tests.support import START, open_sample

H = timedelta(hours=1)


def test_a_handover_is_from_the_owner_and_a_reassignment_says_who_made_it(
    engine: Engine, clock: FixedClock
) -> None:
    """li.na passes the case to 王伟; supervisor zhang.min moves it on to chen.jie."""
    case_id = open_sample(engine, actor="li.na")
    clock.advance(H)
    engine.fire(case_id, "assign", actor="li.na", data={"to": "王伟"})
    clock.advance(H)
    engine.fire(case_id, "assign", actor="zhang.min", data={"to": "chen.jie"})
    report = sla_report(engine.context, Period(START - H, START + H))
    (row,) = report["handovers"]
    assert row["moves"] == ["li.na -> 王伟", "王伟 -> chen.jie (reassigned by zhang.min)"]
    assert [m["kind"] for m in row["changes"]] == ["handover", "reassignment"]
    assert report["handed_on_by"] == {"li.na": 1}


def test_a_breach_belongs_to_the_owner_when_the_deadline_fell_due(
    engine: Engine, clock: FixedClock
) -> None:
    """li.na let the first response run out at 24 h; 王伟, given the case at 26 h,
    apologised at 27 h: the breach is li.na's, not the current owner's."""
    case_id = open_sample(engine, actor="li.na")
    clock.advance(26 * H)
    engine.fire(case_id, "assign", actor="li.na", data={"to": "王伟"})
    clock.advance(H)
    engine.fire(case_id, "apologise", actor="王伟")
    report = sla_report(engine.context, Period(START - H, START + H))
    owners = {r["name"]: r for r in report["first_response_by"]["owner"]}
    assert set(owners) == {"li.na"}
    assert owners["li.na"]["breached"] == 1
