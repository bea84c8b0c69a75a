"""Whether a cycle met its target is decided by its times, not by whether a worker ran."""

from __future__ import annotations

from datetime import timedelta

from casework.workflow import Engine, FixedClock
from casework.workflow.display.periods import Period
from casework.workflow.reports.business import sla_report
from casework.workflow.reports.case_page import case_report
from tests.support import START, open_sample, run_due

H = timedelta(hours=1)


def _clock(document: dict, name: str) -> dict:
    return next(c for c in document["clocks"] if c.get("clock", c.get("name")) == name)


def test_a_late_first_response_is_breached_though_no_deadline_fired(
    engine: Engine, clock: FixedClock
) -> None:
    """30 h to the apology with no tick in between: breached in every view; 2 h: met."""
    late = open_sample(engine, customer="late")
    early = open_sample(engine, customer="early")
    clock.advance(2 * H)
    engine.fire(early, "apologise", actor="li.na")
    clock.advance(28 * H)
    engine.fire(late, "apologise", actor="li.na")
    assert engine.get(late).escalation_level == 0  # nothing fired

    report = sla_report(engine.context, Period(START - H, START + H))
    first = next(r for r in report["clocks"] if r["name"] == "first_response")
    assert (first["met"], first["breached"]) == (1, 1)

    standing = _clock(engine.replay(late).sla, "first_response")
    assert standing["breached"]
    assert standing["outcome"] == "breached"
    assert standing["overdue_s"] == 6 * 3600
    assert _clock(engine.replay(early).sla, "first_response")["outcome"] == "met"
    assert _clock(engine.explain_sla(late), "first_response")["outcome"] == "breached"
    assert "breached by 6h" in case_report(engine.context, late)
    assert "met" in case_report(engine.context, early)


def test_exactly_the_target_is_met(engine: Engine, clock: FixedClock) -> None:
    """Used time equal to the target is within it."""
    case_id = open_sample(engine)
    clock.advance(24 * H)
    engine.fire(case_id, "apologise", actor="li.na")
    assert _clock(engine.replay(case_id).sla, "first_response")["outcome"] == "met"


def test_the_report_reads_the_first_response_and_the_escalations_from_the_fold(
    engine: Engine, clock: FixedClock
) -> None:
    """The first response is the moment the first_response clock stopped, whatever event
    stopped it (a withdrawal too, which its compliance already counted as met); the
    escalations are the rises of the case's level, which a deadline reaching a level the
    case already holds by hand does not raise again."""
    answered = open_sample(engine, customer="answered")
    withdrawn = open_sample(engine, customer="withdrawn")
    raised = open_sample(engine, customer="raised")
    clock.advance(H)
    engine.fire(raised, "escalate_now", actor="li.na", data={"reason": "客户情绪激动"})
    clock.advance(H)
    engine.fire(answered, "apologise", actor="li.na")
    clock.advance(3 * H)
    engine.fire(withdrawn, "withdraw", actor="li.na", note="客户撤回")
    run_due(engine, START + 24 * H)  # first_response's level 1: the level it has by hand
    run_due(engine, START + 28 * H)  # its level 2
    levels = [e.data["level"] for e in engine.history(raised) if e.event == "escalate"]
    assert levels == [1, 2]  # two escalations recorded
    assert engine.get(raised).escalation_level == 2  # the case page's level

    report = sla_report(engine.context, Period(START - H, START + H))
    first = next(r for r in report["clocks"] if r["name"] == "first_response")
    assert (first["met"], first["breached"]) == (2, 1)
    timing = report["first_response_time"]
    assert timing["count"] == 2  # the withdrawal's too (an apology alone counted 1)
    assert (timing["mean_h"], timing["max_h"]) == (3.5, 5.0)
    assert report["escalations_by_hand"] == {"1": 1}
    assert report["escalations_by_level"] == {"2": 1}  # level 1 was the case's already
