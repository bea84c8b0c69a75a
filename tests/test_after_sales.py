"""The after-sales work behind a complaint: visits, routing, parts, calls, escalation by
hand; each timer fires once, and every case replays and verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest

from machines import COMPLAINT_V1, MachineRegistry
from tests.support import START, open_sample
from workflow import Engine, FixedClock, GuardFailed, UnknownEvent

H = timedelta(hours=1)


def _window(start: timedelta, hours: int = 3) -> dict[str, str]:
    return {
        "from": (START + start).isoformat(),
        "to": (START + start + hours * H).isoformat(),
        "technician": "刘师傅",
        "partner": "P-安装一队",
    }


def _events(engine: Engine, case_id: str) -> list[str]:
    return [e.event for e in engine.history(case_id)]


def test_a_window_nobody_kept_is_missed_once_and_counts_against_its_partner(
    engine: Engine, clock: FixedClock
) -> None:
    case_id = open_sample(engine)
    engine.fire(case_id, "apologise", actor="li.na")
    engine.fire(case_id, "book_visit", actor="li.na", data=_window(2 * H))
    assert {d["clock"] for d in engine.get(case_id).deadlines} >= {"appointment"}
    clock.advance(5 * H + timedelta(minutes=1))  # the window ended at START + 5h
    engine.process_due()
    engine.process_due()  # a second run records nothing more
    missed = [e for e in engine.history(case_id) if e.event == "appointment_missed"]
    assert len(missed) == 1
    assert missed[0].data["partner"] == "P-安装一队"
    assert missed[0].occurred_at == START + 5 * H
    mails = engine.store.mails(kind="warning", case_id=case_id)
    assert any(m.body["clock"] == "appointment" for m in mails)  # the owner hears of it
    assert engine.verify().ok


def test_arriving_ends_the_window_and_a_second_visit_marks_the_case(
    engine: Engine, clock: FixedClock
) -> None:
    case_id = open_sample(engine)
    engine.fire(case_id, "apologise", actor="li.na")
    engine.fire(case_id, "book_visit", actor="li.na", data=_window(2 * H))
    clock.advance(3 * H)
    engine.fire(case_id, "arrive", actor="刘师傅")
    assert "appointment" not in {d["clock"] for d in engine.get(case_id).deadlines}
    engine.fire(case_id, "visit_done", actor="刘师傅", data={"fixed": "false"})
    assert "not_fixed_first_visit" not in engine.get(case_id).facts
    clock.advance(H)
    engine.fire(case_id, "book_visit", actor="li.na", data=_window(30 * H))  # rebooked
    clock.advance(30 * H)
    engine.fire(case_id, "arrive", actor="刘师傅")
    case = engine.fire(case_id, "visit_done", actor="刘师傅", data={"fixed": "true"})
    assert case.facts["not_fixed_first_visit"] is True
    assert case.facts["visits"] == 2
    bookings = [e.data for e in engine.history(case_id) if e.event == "book_visit"]
    assert [b["to"] for b in bookings] == [_window(2 * H)["to"], _window(30 * H)["to"]]
    clock.advance(24 * H)
    engine.process_due()
    assert "appointment_missed" not in _events(engine, case_id)
    assert "contact_due" in _events(engine, case_id)  # nobody called after the repair
    assert engine.verify().ok


def test_visits_are_refused_out_of_order_with_the_reason(engine: Engine) -> None:
    case_id = open_sample(engine)
    engine.fire(case_id, "apologise", actor="li.na")
    with pytest.raises(GuardFailed, match="book_visit first"):
        engine.fire(case_id, "arrive", actor="刘师傅")
    backwards = {**_window(2 * H), "to": START.isoformat()}
    with pytest.raises(GuardFailed, match="window promised"):
        engine.fire(case_id, "book_visit", actor="li.na", data=backwards)
    engine.fire(case_id, "book_visit", actor="li.na", data=_window(2 * H))
    engine.fire(case_id, "arrive", actor="刘师傅")
    with pytest.raises(GuardFailed, match="fixed=true"):
        engine.fire(case_id, "visit_done", actor="刘师傅", data={"fixed": "maybe"})


def test_a_unit_routed_to_has_its_own_time_and_a_promised_part_its_date(
    engine: Engine, clock: FixedClock
) -> None:
    case_id = open_sample(engine, category="product_quality")
    engine.fire(case_id, "route", actor="li.na", data={"to": "manufacturer", "partner": "M-1"})
    due = {d["clock"]: d["due_at"] for d in engine.get(case_id).deadlines}
    assert due["routed"] == (START + 72 * H).isoformat(timespec="microseconds")
    promised = (START + 48 * H).isoformat()
    engine.fire(case_id, "route", actor="li.na", data={"to": "procurement", "promised": promised})
    engine.fire(case_id, "wait", actor="li.na", data={"reason": "part"})
    due = {d["clock"]: d for d in engine.get(case_id).deadlines}
    assert due["routed"]["cycle"] == 3  # set again by event 3: the new unit's time
    assert due["part_arrival"]["due_at"].startswith("2026-11-25T01:00:00")
    assert due["contact"]["kind"] == "contact_due"  # call with an estimate, in 2 hours
    clock.advance(H)
    engine.fire(case_id, "contact", actor="li.na", note="已告知预计到货时间")
    assert "contact" not in {d["clock"] for d in engine.get(case_id).deadlines}
    clock.advance(49 * H)
    engine.process_due()
    events = _events(engine, case_id)
    assert events.count("part_overdue") == 1
    assert events.count("route_overdue") == 0  # procurement has 72 hours
    assert engine.verify().ok


def test_escalation_by_hand_takes_the_next_level_at_once_and_mails_it(
    engine: Engine, clock: FixedClock
) -> None:
    case_id = open_sample(engine, branch="东莞长安店")
    with pytest.raises(GuardFailed, match="reason"):
        engine.fire(case_id, "escalate_now", actor="li.na")
    case = engine.fire(case_id, "escalate_now", actor="li.na", data={"reason": "客户要求见店长"})
    assert case.escalation_level == 1
    mails = engine.store.mails(kind="escalation", case_id=case_id)
    assert [(m.level, m.body["clock"]) for m in mails] == [(1, "escalate_now")]
    for _ in range(2):
        engine.fire(case_id, "escalate_now", actor="li.na", data={"reason": "仍未解决"})
    with pytest.raises(GuardFailed, match="top level"):
        engine.fire(case_id, "escalate_now", actor="li.na", data={"reason": "again"})
    assert engine.get(case_id).escalation_level == 3
    assert engine.verify().ok


def test_a_version_1_case_keeps_its_rules_beside_version_2(db_url: str, clock: FixedClock) -> None:
    with Engine.open(db_url, clock=clock, registry=MachineRegistry([COMPLAINT_V1])) as before:
        old = open_sample(before)  # opened before version 2 was installed
    with Engine.open(db_url, clock=clock) as engine:
        new = open_sample(engine)
        assert (engine.get(old).machine_version, engine.get(new).machine_version) == (1, 2)
        engine.fire(old, "apologise", actor="li.na")
        with pytest.raises(UnknownEvent):
            engine.fire(old, "book_visit", actor="li.na", data=_window(2 * H))
        engine.fire(new, "apologise", actor="li.na")
        engine.fire(new, "book_visit", actor="li.na", data=_window(2 * H))
        assert engine.replay(old).state == "apologised"
        assert engine.verify().ok
