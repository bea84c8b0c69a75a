"""The console's parts without a browser: each event's inputs as the machine declares
them, times read in the viewer's zone, the queue's order and countdown to the breach,
search on both databases, and "open" leaving resting cases out (``list --open``)."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from casework.machines.after_sales import COMPLAINT_V2, ROUTE_UNITS
from casework.machines.definition import MachineDefinition, done_states
from casework.machines.partner_rules import PARTNER_RULES
from casework.workflow.cli import main
from casework.workflow.clock import FixedClock
from casework.workflow.console.case_view import masked, menu
from casework.workflow.console.forms import Vocabulary, field_input, form_data, local_instant
from casework.workflow.console.standing import queue_order, span
from casework.workflow.engine import Engine
from casework.workflow.errors import InvalidInput
from tests.support import open_sample

SHANGHAI = ZoneInfo("Asia/Shanghai")
NO_WORDS = Vocabulary(("store", "phone"), ("service_delayed",), ("normal", "urgent"), ())


def _input(event: str, name: str, vocabulary: Vocabulary = NO_WORDS) -> object:
    rules = [r for (_, e), rs in COMPLAINT_V2.rules.items() if e == event for r in rs]
    needs = tuple(dict.fromkeys(c.requirement for r in rules for c in r.conditions))
    return field_input("zh", COMPLAINT_V2, event, name, needs, vocabulary)


def test_each_field_takes_the_input_its_declaration_asks_for() -> None:
    start = _input("book_visit", "from")
    assert (start.kind, start.required, start.label) == ("datetime", True, "上门时段开始")
    assert _input("route", "promised").kind == "datetime"  # time_fields, optional
    assert _input("route", "promised").required is False
    unit = _input("route", "to")
    assert unit.kind == "select"
    assert [v for v, _ in unit.choices] == list(ROUTE_UNITS)
    assert dict(unit.choices)["branch_cs"] == "分公司客服"
    assert _input("visit_done", "fixed").kind == "checkbox"
    score = _input("follow_up", "satisfaction")
    assert (score.kind, score.low, score.high) == ("number", 1, 5)
    assert _input("quote", "amount").kind == "money"
    assert _input("quote", "travel").kind == "money"
    assert _input("quote", "currency").choices == (("CNY", "CNY"),)
    assert [v for v, _ in _input("decide_remedy", "remedy").choices] == [
        "return", "exchange", "repair", "paid_repair",
    ]  # fmt: skip
    fault = _input("partner_fault", "fault")
    assert [v for v, _ in fault.choices] == list(PARTNER_RULES.deductions)
    charge = _input("partner_fault", "charge")
    assert (charge.kind, charge.required) == ("money", False)
    assert _input("partner_fault", "partner").kind == "text"  # no partner registered
    registry = Vocabulary((), (), (), (("P-01", "安装一队"),))
    partner = _input("partner_fault", "partner", registry)
    assert partner.choices == (("P-01", "安装一队"),)
    assert _input("assign", "to").kind == "text"  # an agent, not a route unit


def test_a_picked_time_is_read_in_the_viewers_zone() -> None:
    assert local_instant("2026-12-06T09:00", SHANGHAI, "from") == "2026-12-06T09:00:00+08:00"
    assert local_instant("2026-12-06T09:00+00:00", SHANGHAI, "from").endswith("+00:00")
    with pytest.raises(InvalidInput):
        local_instant("明天 9:00", SHANGHAI, "from")
    inputs = (_input("book_visit", "from"), _input("visit_done", "fixed"))
    sent = {"data.from": "2026-12-06T09:00", "data.fixed": "true", "data.technician": " 刘 ",
            "data.partner": "", "note": "x"}  # fmt: skip
    assert form_data(sent, "data.", inputs, SHANGHAI) == {
        "from": "2026-12-06T09:00:00+08:00", "fixed": "true", "technician": "刘",
    }  # fmt: skip


def test_the_queue_puts_the_latest_breach_first_and_counts_to_the_breach(
    engine: Engine, clock: FixedClock
) -> None:
    now = clock.now()
    later = open_sample(engine, received_at=now - timedelta(hours=30))  # 6 h late
    latest = open_sample(engine, received_at=now - timedelta(hours=50))  # 26 h late
    fresh = open_sample(engine)  # 24 h to its first response's breach
    soon = open_sample(engine, received_at=now - timedelta(hours=20))  # 4 h left
    order = queue_order(engine, [engine.get(c) for c in (fresh, later, soon, latest)], now)
    assert [s.case.id for s in order] == [latest, later, soon, fresh]
    assert order[0].late == timedelta(hours=26)
    assert order[2].breach_at == now + timedelta(hours=4)  # the breach, not the 75 % warning
    assert span(order[3].breach_at.timestamp() - now.timestamp(), "zh") == "1天 0小时 0分"


def test_the_likely_next_step_leads_and_an_erased_case_offers_no_contact(
    engine: Engine,
) -> None:
    from casework.workflow.console.actions import actions

    case_id = open_sample(engine, customer="彭平")
    case = engine.get(case_id)
    machine = engine.registry.get(case.machine, case.machine_version)
    found = menu("zh", machine, case, actions(engine, case), NO_WORDS)
    assert found.primary is not None
    assert (found.primary.event, found.primary.label) == ("apologise", "致歉")
    assert "contact" in [f.event for f in found.others]
    engine.erase("彭平", actor="dpo", reason="customer asked")
    gone = engine.get(case_id)
    after = menu("zh", machine, gone, actions(engine, gone), NO_WORDS)
    assert "contact" not in [f.event for f in after.others]
    assert masked("+86 138 0000 1111") == "861****1111"
    assert masked("wang@example.com") == "w***@example.com"


def test_search_finds_by_prefix_customer_phone_serial_and_order(engine: Engine) -> None:
    first = open_sample(engine, customer="彭平", contact="138 0000 1111", branch="A",
                        attributes={"serial_number": "SN-42", "order_number": "JD-9"})  # fmt: skip
    second = open_sample(engine, customer="彭平", contact="13800001111", branch="B")
    other = open_sample(engine, customer="黄丽", contact="wang@example.com", branch="A")
    find = engine.context.store.cases.find
    assert {c.id for c in find("彭平", 10)} == {first, second}
    assert {c.id for c in find("13800001111", 10)} == {first, second}
    assert {c.id for c in find("0000 1111", 10)} == {first, second}
    assert [c.id for c in find("wang@example.com", 10)] == [other]
    assert [c.id for c in find("SN-42", 10)] == [first]
    assert [c.id for c in find("JD-9", 10)] == [first]
    assert [c.id for c in find(other[:6], 10)] == [other]
    assert [c.id for c in find("彭平", 10, ("A",))] == [first]  # a branch sees its own
    assert find("彭", 10) == []  # a name is matched whole
    engine.erase("黄丽", actor="dpo", reason="asked")
    assert find("wang@example.com", 10) == []  # erased values find nothing


def test_open_means_neither_final_nor_resting(engine: Engine, db_url: str) -> None:
    assert set(done_states(engine.registry)) == {"followed_up", "merged", "withdrawn"}
    assert COMPLAINT_V2.is_open("resolved")
    assert not COMPLAINT_V2.is_open("followed_up")
    with pytest.raises(ValueError, match="resting names unknown states"):
        MachineDefinition(name="x", version=1, chart=COMPLAINT_V2.chart,
                          resting=frozenset({"asleep"}))  # fmt: skip
    working = open_sample(engine)
    done = open_sample(engine)
    steps = (("apologise", {}), ("confirm_needs", {}), ("resolve", {"solution": "s"}),
             ("follow_up", {"satisfaction": 2}))  # fmt: skip
    for event, data in steps:
        engine.fire(done, event, actor="li.na", data=data)
    listed = CliRunner().invoke(main, ["list", "--open", "--json", "--db", db_url])
    assert listed.exit_code == 0, listed.output
    assert [c["id"] for c in json.loads(listed.stdout)] == [working]
    engine.fire(done, "reopen", actor="li.na")  # reopened: open work again
    listed = CliRunner().invoke(main, ["list", "--open", "--json", "--db", db_url])
    assert {c["id"] for c in json.loads(listed.stdout)} == {working, done}


def test_the_timeline_shows_labels_and_local_times_never_identifiers(
    engine: Engine, clock: FixedClock
) -> None:
    from casework.workflow.console.case_view import timeline

    case_id = open_sample(engine, received_at=clock.now() - timedelta(hours=30))
    engine.process_due()  # the warning and the escalations the worker records
    engine.fire(case_id, "reclassify", actor="li.na", data={"priority": "urgent", "reason": "r"})
    case = engine.get(case_id)
    machine = engine.registry.get(case.machine, case.machine_version)
    rows = timeline("zh", machine, engine.history(case_id), SHANGHAI)
    escalations = [r for r in rows if r.event == "超时升级"]
    assert escalations
    shown = {f.label: f.text for f in escalations[0].fields}
    assert shown["升级级别"] == "L1"
    assert shown["时钟"] == "首次响应"
    assert shown["到期时间"].startswith("2026-11-23 ")  # local, to the minute
    words = " ".join(f"{f.label} {f.text}" for r in rows for f in r.fields)
    for raw in ("first_response", "due_at", "late_by_s", "+00:00", "{'", "priority"):
        assert raw not in words
    assert "优先级: 普通" in words  # what it was, labelled
