"""``reclassify``: a case's priority, category, channel or customer tier changes, the
change is recorded with what it replaced, and its clocks keep the working time they used
under the target that now applies; verify, replay and the what-if agree."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from casework.machines import MachineRegistry
from casework.machines.after_sales import COMPLAINT_V2
from casework.workflow import Engine, EventNotAllowed, FixedClock, InvalidInput
from casework.workflow.cli import main
from casework.workflow.display.periods import period_of
from casework.workflow.sla.whatif import simulate
from tests.support import open_sample, run_due
from tests.support.repair_machine import REPAIR_V1

H = timedelta(hours=1)


def _first_response(engine: Engine, case_id: str) -> dict[str, object]:
    clocks = engine.explain_sla(case_id)["clocks"]
    return next(c for c in clocks if c["clock"] == "first_response")


def test_a_more_urgent_case_keeps_its_used_time_under_the_shorter_target(
    engine: Engine, clock: FixedClock
) -> None:
    case_id = open_sample(engine)
    clock.advance(6 * H)
    assert _first_response(engine, case_id)["target_s"] == 24 * 3600
    case = engine.fire(case_id, "reclassify", actor="wang.wei",
                       data={"priority": "urgent", "reason": "顾客已投诉到12315"})  # fmt: skip
    assert case.priority == "urgent"
    event = engine.history(case_id)[-1]
    assert event.data == {"priority": "urgent", "reason": "顾客已投诉到12315",
                          "was": {"priority": "normal"}}  # fmt: skip
    first = _first_response(engine, case_id)
    assert first["target_s"] == 8 * 3600
    assert first["target_from"] == "by_priority: urgent"
    assert first["used_s"] == 6 * 3600  # nothing lost, nothing restarted
    # 6h used of 8h: the warning point (75%) is past, so the breach is next, 2h from now
    planned = {(d["clock"], d["level"]): d["due_at"] for d in case.deadlines}
    assert datetime.fromisoformat(planned[("first_response", 1)]) == clock.now() + 2 * H
    change = engine.explain_sla(case_id)["target_changes"]
    assert change[0]["changed"] == {"priority": ["normal", "urgent"]}
    assert change[0]["reason"] == "顾客已投诉到12315"
    clock.advance(2 * H)
    fired = run_due(engine, clock.now())
    assert [(f.clock, f.level) for f in fired] == [("first_response", 1)]
    assert engine.verify().ok
    replayed = engine.replay(case_id)
    assert replayed.facts == engine.get(case_id).facts
    assert replayed.escalation_level == 1


def test_tier_and_category_change_the_row_and_the_fold_alike(
    engine: Engine, clock: FixedClock
) -> None:
    case_id = open_sample(engine, branch="东莞长安店")
    clock.advance(H)
    case = engine.fire(case_id, "reclassify", actor="li.na",
                       data={"tier": "gold", "category": "missed_appointment"})  # fmt: skip
    assert case.attributes["tier"] == "gold"
    assert case.category == "missed_appointment"
    assert [c.id for c in engine.list(category="missed_appointment")] == [case_id]
    clock.advance(H)
    engine.fire(case_id, "reclassify", actor="li.na", data={"tier": "silver"})
    assert engine.get(case_id).attributes["tier"] == "silver"
    assert engine.get(case_id).facts["classification"] == {
        "tier": "silver",
        "category": "missed_appointment",
    }
    assert engine.verify().ok


def test_refusals_say_what_is_wrong_and_write_nothing(engine: Engine, clock: FixedClock) -> None:
    case_id = open_sample(engine)
    before = engine.get(case_id).version
    with pytest.raises(InvalidInput, match="already has priority=normal"):
        engine.fire(case_id, "reclassify", actor="li.na", data={"priority": "normal"})
    with pytest.raises(InvalidInput, match="valid priority values: normal, high, urgent"):
        engine.fire(case_id, "reclassify", actor="li.na", data={"priority": "asap"})
    with pytest.raises(InvalidInput, match="one or more of priority="):
        engine.fire(case_id, "reclassify", actor="li.na", data={"reason": "why not"})
    assert engine.get(case_id).version == before
    engine.fire(case_id, "withdraw", actor="li.na")
    with pytest.raises(EventNotAllowed):
        engine.fire(case_id, "reclassify", actor="li.na", data={"priority": "urgent"})


def test_a_machine_without_a_tier_refuses_one(db_url: str, clock: FixedClock) -> None:
    registry = MachineRegistry([COMPLAINT_V2, REPAIR_V1])
    with Engine.open(db_url, clock=clock, registry=registry) as engine:
        case_id = engine.open_case(customer="C", summary="s", machine="repair", actor="li.na",
                                   attributes={"serial_number": "SN-1"}).id  # fmt: skip
        with pytest.raises(InvalidInput, match="repair v1 has no tier attribute"):
            engine.fire(case_id, "reclassify", actor="li.na", data={"tier": "gold"})
        engine.fire(case_id, "reclassify", actor="li.na", data={"priority": "high"})
        assert engine.verify().ok


def test_the_what_if_replays_a_reclassified_case_as_it_happened(
    engine: Engine, clock: FixedClock
) -> None:
    """The policy in force gives back what happened: the case is replayed with its
    opening priority, then the change at its real time."""
    case_id = open_sample(engine)
    clock.advance(5 * H)
    engine.fire(case_id, "reclassify", actor="li.na", data={"priority": "urgent"})
    clock.advance(5 * H)
    run_due(engine, clock.now())
    policy = engine.policies.get(engine.get(case_id).sla_policy)
    assert policy is not None
    period, _ = period_of(month="2026-11", zone=UTC, now=clock.now())
    report = simulate(engine.context, policy, period)
    assert report["totals"]["proposed"] == report["totals"]["actual"]
    assert report["totals"]["actual"]["level 1"] == 1
    assert report["changed"] == []


def test_the_command_line_reclassifies_and_explains(db_url: str) -> None:
    runner = CliRunner()
    opened = runner.invoke(main, ["--db", db_url, "open", "--customer", "张伟", "--channel",
                                  "store", "--category", "product_quality", "--summary", "屏幕闪烁",
                                  "--actor", "li.na"])  # fmt: skip
    assert opened.exit_code == 0, opened.output
    case_id = opened.output.strip().splitlines()[-1]
    done = runner.invoke(main, ["--db", db_url, "--tz", "Asia/Shanghai", "reclassify", case_id,
                                "--priority", "urgent", "--reason", "升级",
                                "--actor", "wang.wei"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"{case_id}: reclassified: priority normal -> urgent" in done.output
    assert "first_response breach due" in done.output or "first_response warning due" in done.output
    explained = runner.invoke(main, ["--db", db_url, "--tz", "Asia/Shanghai", "sla", "explain",
                                     case_id])  # fmt: skip
    assert "reclassify at" in explained.output
    assert "by wang.wei" in explained.output
    assert "(by_priority: urgent)" in explained.output
    again = runner.invoke(main, ["--db", db_url, "reclassify", case_id, "--priority", "urgent",
                                 "--actor", "wang.wei"])  # fmt: skip
    assert again.exit_code == 2
    assert "already has priority=urgent" in again.output
    nothing = runner.invoke(main, ["--db", db_url, "reclassify", case_id, "--actor", "x"])
    assert nothing.exit_code == 2
    assert "--priority" in nothing.output
    shown = runner.invoke(main, ["--db", db_url, "show", case_id, "--json"])
    assert json.loads(shown.stdout)["priority"] == "urgent"
