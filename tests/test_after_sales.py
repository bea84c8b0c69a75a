"""The after-sales work behind a complaint: visits, routing, parts, calls, escalation by
hand; each timer fires once, and every case replays and verifies."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from casework.machines import COMPLAINT_V1, MachineRegistry
from casework.workflow import Engine, FixedClock, GuardFailed, UnknownEvent
from casework.workflow.cli import main
from tests.support import START, open_sample

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
    mails = engine.context.store.outbox.rows(kind="warning", case_id=case_id)
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
    mails = engine.context.store.outbox.rows(kind="escalation", case_id=case_id)
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


def _cli(db_url: str, *args: str) -> Any:
    result = CliRunner().invoke(main, [*args, "--db", db_url])
    assert result.exit_code == 0, result.output
    return result


def test_partners_are_rated_per_quarter_with_every_deduction_traceable(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    _cli(db_url, "partners", "add", "P-安装一队", "--name", "长安安装一队", "--kind",
         "installer", "--branch", "东莞长安店")  # fmt: skip
    _cli(db_url, "partners", "add", "P-维修二队", "--name", "维修二队", "--kind", "repairer")
    twice = CliRunner().invoke(main, ["partners", "add", "P-维修二队", "--name", "x", "--kind",
                                      "repairer", "--db", db_url])  # fmt: skip
    assert twice.exit_code == 2
    assert "registered already" in twice.stderr
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "kind,branch,category,partner,done_at,jobs\n"
        "installation,东莞长安店,missed_appointment,P-安装一队,2026-11-20,120\n"
        "repair,东莞长安店,,P-维修二队,2026-11-21 10:00,80\n",
        encoding="utf-8",
    )
    imported = json.loads(_cli(db_url, "jobs", "import", str(jobs), "--json",
                               "--tz", "Asia/Shanghai").stdout)  # fmt: skip
    assert imported == {"rows": 2, "jobs": 200}
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,branch,done_at\nrepair,东莞长安店,2026-11-21\nflying,x,2026-11-21\n")
    refused = CliRunner().invoke(main, ["jobs", "import", str(bad), "--db", db_url])
    assert refused.exit_code == 2
    assert "bad.csv:3: kind must be installation or repair" in refused.stderr
    with Engine.open(db_url, clock=clock) as engine:
        assert (
            sum(
                c.jobs for c in engine.context.store.partners.job_counts(START - 30 * 24 * H, START)
            )
            == 200
        )
        missed = open_sample(engine, branch="东莞长安店", category="missed_appointment")
        engine.fire(missed, "apologise", actor="li.na")
        engine.fire(missed, "book_visit", actor="li.na", data=_window(H))
        clock.advance(5 * H)
        engine.process_due()  # nobody came: appointment_missed, against P-安装一队
        repeat = open_sample(engine, branch="东莞长安店")
        engine.fire(repeat, "apologise", actor="li.na")
        visit = {**_window(6 * H), "partner": "P-维修二队"}
        engine.fire(repeat, "book_visit", actor="li.na", data=visit)
        clock.advance(2 * H)
        engine.fire(repeat, "arrive", actor="王师傅")
        engine.fire(repeat, "visit_done", actor="王师傅", data={"fixed": "false"})
        engine.fire(repeat, "book_visit", actor="li.na", data={**visit, "partner": "P-安装一队"})
        engine.fire(repeat, "arrive", actor="刘师傅")
        engine.fire(repeat, "visit_done", actor="刘师傅", data={"fixed": "true"})
        engine.fire(repeat, "partner_fault", actor="zhao.lei",
                    data={"partner": "P-维修二队", "fault": "not_cleaned_up"})  # fmt: skip
        engine.fire(repeat, "suspend_settlement", actor="zhao.lei",
                    data={"partner": "P-维修二队", "reason": "不同意处理方案"})  # fmt: skip
        hashes = {(e.case_id, e.seq): e.hash for c in (missed, repeat)
                  for e in engine.history(c)}  # fmt: skip
    report = json.loads(
        _cli(
            db_url,
            "report",
            "partners",
            "--quarter",
            "2026Q4",
            "--json",
            "--html",
            str(tmp_path / "partners.html"),
        ).stdout
    )
    rows = {r["partner"]: r for r in report["partners"]}
    install, repair = rows["P-安装一队"], rows["P-维修二队"]
    # seed 003, service 9: not arriving at the time agreed costs 100 yuan and a point
    assert (install["points"], install["band"], install["fines_yuan"]) == (99, "★★★★★", 100)
    assert install["faults"] == {"missed_appointment": 1}
    assert install["jobs"] == 120
    # the first visit did not fix it: a repeat repair (twice the basic fee) and a mess
    assert repair["faults"] == {"repeat_repair": 1, "not_cleaned_up": 1}
    # installation 3 (1 point, twice the fee) and service 6 (1 point, 100 yuan)
    assert (repair["points"], repair["fines_yuan"]) == (98, 2 * 100 + 100)
    assert repair["settlement_suspended"][0]["reason"] == "不同意处理方案"
    assert [r["partner"] for r in report["partners"]] == ["P-安装一队", "P-维修二队"]
    for row in report["partners"]:
        for d in row["deductions"]:
            assert hashes[(d["case_id"], d["seq"])] == d["hash"]
    page = (tmp_path / "partners.html").read_text(encoding="utf-8")
    assert "长安安装一队" in page
    assert repair["deductions"][0]["hash"][:16] in page
    with Engine.open(db_url, clock=clock) as engine:
        assert engine.verify().ok


def test_the_sla_report_tells_escalations_by_hand_and_satisfaction_per_partner(
    engine: Engine, clock: FixedClock
) -> None:
    from casework.workflow.display.periods import period_of
    from casework.workflow.reports.business import sla_report

    case_id = open_sample(engine, branch="东莞长安店")
    engine.fire(case_id, "escalate_now", actor="li.na", data={"reason": "客户情绪激动"})
    engine.fire(case_id, "apologise", actor="li.na")
    engine.fire(case_id, "book_visit", actor="li.na", data=_window(H))
    engine.fire(case_id, "confirm_needs", actor="li.na")
    engine.fire(case_id, "resolve", actor="li.na", data={"solution": "换新"})
    engine.fire(case_id, "follow_up", actor="wang.wei", data={"satisfaction": 2})
    period, _ = period_of(month="2026-11", zone=UTC, now=clock.now())
    report = sla_report(engine.context, period)
    assert report["escalations_by_hand"] == {"1": 1}
    assert report["escalations_by_level"] == {}
    assert report["csat"]["partner"] == [{"name": "P-安装一队", "follow_ups": 1, "csat": 2.0}]
    assert report["csat"]["technician"][0]["name"] == "刘师傅"
    assert report["csat"]["branch"][0]["name"] == "东莞长安店"


def test_the_rating_rules_are_configured_and_checked() -> None:
    from casework.workflow.config import settings_from_mapping
    from casework.workflow.errors import ConfigError

    settings = settings_from_mapping(
        {"partners": {"basic_repair_fee": 150,
                      "deductions": {"missed_appointment": {"points": 5}}}}, "t.toml"
    )  # fmt: skip
    rules = settings.partners
    assert rules.deductions["missed_appointment"].points == 5
    assert rules.deductions["missed_appointment"].fine_yuan == 100  # the seed's, kept
    assert rules.deductions["repeat_repair"].fine(rules.basic_repair_fee) == 300
    assert rules.version != 1  # changed rules are another version, named in the report
    with pytest.raises(ConfigError, match=r"partners\.deductions\.late\.points"):
        settings_from_mapping({"partners": {"deductions": {"late": {"points": -1}}}}, "t.toml")
    with pytest.raises(ConfigError, match="unknown key"):
        settings_from_mapping({"partners": {"fee": 1}}, "t.toml")


def test_a_window_typed_in_local_time_is_stored_with_its_offset(db_url: str) -> None:
    with Engine.open(db_url) as engine:
        case_id = open_sample(engine)
        engine.fire(case_id, "apologise", actor="li.na")
    booked = CliRunner().invoke(main, [
        "fire", case_id[:6], "book_visit", "--actor", "li.na", "--tz", "Asia/Shanghai",
        "--data", "from=2099-12-03 09:00", "--data", "to=2099-12-03 12:00",
        "--data", "technician=刘师傅", "--db", db_url, "--json",
    ])  # fmt: skip
    assert booked.exit_code == 0, booked.output
    assert "--data to 2099-12-03 12:00 read as 2099-12-03 12:00:00 in Asia/Shanghai" in (
        booked.stderr
    )
    with Engine.open(db_url) as engine:
        data = engine.history(case_id)[-1].data
        assert (data["from"], data["to"]) == (
            "2099-12-03T01:00:00+00:00",
            "2099-12-03T04:00:00+00:00",
        )
        shown = CliRunner().invoke(main, ["show", case_id, "--db", db_url, "--tz", "UTC"]).stdout
        assert "appointment timer runs out at 2099-12-03 04:00:00 UTC" in shown
        assert "technician 刘师傅" in shown


def test_a_repair_decided_without_a_promised_day_arms_no_timer() -> None:
    """Version 2 histories from before the repair timer replay as they did: their
    ``decide_remedy`` carries no ``repair_due``, so the fold arms nothing; one that
    carries it arms the ``repair`` timer, and ``repair_done`` ends it."""
    from casework.machines.after_sales import COMPLAINT_V2
    from casework.machines.fold import Allowed, CaseRules, opened, step
    from casework.machines.sla import policy_from_document

    assert COMPLAINT_V2.sla is not None
    policy = policy_from_document(COMPLAINT_V2.sla, COMPLAINT_V2.states)
    rules = CaseRules(COMPLAINT_V2, {policy.version: policy}, {"branch": "广州"})
    folded = opened(rules, "li.na", START, policy.version)
    old = {"remedy": "repair", "rules_version": 2, "rule": "warranty repair within 12 months"}
    for event, data in [("apologise", {}), ("confirm_needs", {}), ("decide_remedy", old)]:
        decision, folded = step(rules, folded, event, data, START)
        assert type(decision) is Allowed
    assert folded.sla.timers == ()
    due = (START + timedelta(days=15)).isoformat()
    _, armed = step(rules, folded, "decide_remedy", {**old, "repair_due": due}, START)
    assert [(t.name, t.due_at.isoformat()) for t in armed.sla.timers] == [("repair", due)]
    _, done = step(rules, armed, "repair_done", {}, START + H)
    assert done.sla.timers == ()


def test_a_follow_up_ends_the_reminders_of_the_work_it_closes(
    engine: Engine, clock: FixedClock
) -> None:
    """A call-back reminder never fires on a case already followed up (the month's data
    had 33 such): the follow-up ends every timer the work had set."""
    case_id = open_sample(engine)
    engine.fire(case_id, "apologise", actor="li.na")
    engine.fire(case_id, "book_visit", actor="li.na", data=_window(H))
    clock.advance(2 * H)
    engine.fire(case_id, "arrive", actor="刘师傅")
    engine.fire(case_id, "visit_done", actor="刘师傅", data={"fixed": "true"})  # a call is due
    assert "contact" in {d["clock"] for d in engine.get(case_id).deadlines}
    engine.fire(case_id, "confirm_needs", actor="li.na")
    engine.fire(case_id, "resolve", actor="li.na", data={"solution": "修好了"})
    case = engine.fire(case_id, "follow_up", actor="li.na", data={"satisfaction": 5})
    assert case.deadlines == ()
    clock.advance(72 * H)
    engine.process_due()
    assert "contact_due" not in _events(engine, case_id)
    assert engine.verify().ok
