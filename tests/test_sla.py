"""SLA clocks, the escalation ladder and deadline processing, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from casework.storage import iso
from casework.storage.records import CaseQuery
from casework.storage.tables import deadlines_table, outbox_table
from casework.workflow import Engine, FixedClock, GuardFailed, InvalidInput
from tests.support import START, open_sample, run_due, snapshot

H = timedelta(hours=1)
S = timedelta(seconds=1)


def _outbox(engine: Engine) -> list[Any]:
    with engine.db.connect() as conn:
        return list(conn.execute(select(outbox_table).order_by(outbox_table.c.id)))


def _events(engine: Engine, case_id: str, name: str) -> list[Any]:
    return [e for e in engine.history(case_id) if e.event == name]


def test_the_24_hour_rule_warns_breaches_and_climbs_the_ladder(
    engine: Engine, clock: FixedClock
) -> None:
    """Warning at 75%, breach at 24 h exactly, then levels 2 and 3 at their intervals;
    each once, each with one outbox row, each an event of the system actor."""
    case_id = open_sample(engine)
    assert run_due(engine, START + 18 * H - S) == []
    warned = run_due(engine, START + 18 * H)
    assert [(f.clock, f.level) for f in warned] == [("first_response", 0)]
    assert run_due(engine, START + 24 * H - S) == []
    breach = run_due(engine, START + 24 * H)
    assert [(f.clock, f.level, f.late_by) for f in breach] == [("first_response", 1, timedelta(0))]
    assert run_due(engine, START + 24 * H) == []
    case = engine.get(case_id)
    assert case.escalation_level == 1
    mails = _outbox(engine)
    assert [(m.kind, m.level, m.recipients) for m in mails] == [
        ("warning", 0, ["li.na"]),
        ("escalation", 1, ["store-supervisor@casework.invalid"]),
    ]
    assert mails[1].dedupe_key == f"{case_id}:first_response:1:1"
    assert mails[1].body["summary"] == "Nobody came."
    assert (mails[1].body["due_at"], mails[1].body["processed_at"]) == (iso(START + 24 * H),) * 2
    later = run_due(engine, START + 40 * H)
    assert [(f.clock, f.level) for f in later] == [("first_response", 2), ("first_response", 3)]
    escalations = _events(engine, case_id, "escalate")
    assert [e.data["level"] for e in escalations] == [1, 2, 3]
    assert {e.actor for e in escalations} == {"casework"}
    assert escalations[1].occurred_at == START + 28 * H
    assert escalations[1].data["late_by_s"] == 12 * 3600
    assert engine.get(case_id).escalation_level == 3
    rest = run_due(engine, START + 100 * H)
    assert "first_response" not in {f.clock for f in rest}
    assert engine.verify().ok


def test_apologising_in_time_cancels_the_first_response_deadlines(
    engine: Engine, clock: FixedClock
) -> None:
    """The first response at 23 h stops the clock: no breach, its deadlines cancelled."""
    case_id = open_sample(engine)
    clock.set(START + 23 * H)
    engine.process_due()
    case = engine.fire(case_id, "apologise", actor="li.na")
    assert [d["clock"] for d in case.deadlines] == ["resolution"]
    assert run_due(engine, START + 30 * H) == []
    assert _events(engine, case_id, "escalate") == []
    with engine.db.connect() as conn:
        statuses = dict(
            conn.execute(
                select(deadlines_table.c.clock, deadlines_table.c.status).where(
                    deadlines_table.c.clock == "first_response"
                )
            ).all()
        )
    assert statuses == {"first_response": "cancelled"}
    assert engine.verify().ok


def test_a_regulator_complaint_gets_four_hours(engine: Engine) -> None:
    """Targets depend on the channel: the regulator's complaint breaches after 4 hours."""
    case_id = open_sample(engine, channel="regulator")
    fired = run_due(engine, START + 4 * H)
    assert [(f.clock, f.level) for f in fired] == [("first_response", 0), ("first_response", 1)]
    assert engine.get(case_id).escalation_level == 1


def test_waiting_on_the_customer_pauses_the_clocks(engine: Engine, clock: FixedClock) -> None:
    """Paused time does not count; the pause is in the history; deadlines move out."""
    case_id = open_sample(engine)
    clock.set(START + 10 * H)
    paused = engine.fire(case_id, "wait", actor="li.na", data={"reason": "customer"})
    assert paused.deadlines == ()
    with pytest.raises(GuardFailed, match="already waits"):
        engine.fire(case_id, "wait", actor="li.na", data={"reason": "part"})
    assert run_due(engine, START + 30 * H) == []
    clock.set(START + 30 * H)
    resumed = engine.fire(case_id, "resume", actor="li.na")
    warning = next(d for d in resumed.deadlines if d["clock"] == "first_response")
    assert warning["level"] == 0  # 10 h used: 8 h to the 18 h warning point
    assert warning["due_at"].startswith("2026-11-24T15:00:00")  # START + 30 h + 8 h
    fired = run_due(engine, START + 44 * H)
    assert [(f.level, f.due_at) for f in fired if f.clock == "first_response"] == [
        (0, START + 38 * H),
        (1, START + 44 * H),  # 24 h of counted time: 10 h before the pause, 14 h after
    ]
    assert [e.event for e in engine.history(case_id)][-4:-2] == ["wait", "resume"]
    explained = engine.explain_sla(case_id)
    assert [p["event"] for p in explained["pauses"]] == ["wait", "resume"]
    assert engine.verify().ok


def test_system_events_cannot_be_fired_by_hand(engine: Engine) -> None:
    """Warnings, escalations and replans are recorded by casework only."""
    case_id = open_sample(engine)
    before = snapshot(engine)
    for event in ("escalate", "sla_warning", "replan", "open"):
        with pytest.raises(InvalidInput, match="recorded by casework itself"):
            engine.fire(case_id, event, actor="li.na", data={"level": 1})
    assert snapshot(engine) == before


def test_catch_up_after_downtime_records_how_late(engine: Engine, clock: FixedClock) -> None:
    """Deadlines that fell due while no worker ran fire on the next run, each with its
    lateness; the events keep the instant they fell due."""
    ids = [open_sample(engine) for _ in range(5)]
    fired = run_due(engine, START + 26 * H, batch=2)
    assert len([f for f in fired if f.level == 1]) == 5
    for case_id in ids:
        breach = next(e for e in _events(engine, case_id, "escalate") if e.data["level"] == 1)
        assert breach.occurred_at == START + 24 * H
        assert breach.recorded_at == START + 26 * H
        assert breach.data["late_by_s"] == 2 * 3600
    assert engine.verify().ok


def test_overdue_lists_who_is_late(engine: Engine, clock: FixedClock) -> None:
    """``overdue`` names the case, its clock, level and how late it is."""
    late_id = open_sample(engine)
    clock.set(START + 2 * H)
    open_sample(engine)
    run_due(engine, START + 25 * H)
    rows = engine.overdue(START + 25 * H)
    assert [(o.case.id, o.clock, o.late_by) for o in rows] == [(late_id, "first_response", H)]


def test_overdue_of_a_query_keeps_the_late_cases_a_list_of_it_finds(
    engine: Engine, clock: FixedClock
) -> None:
    """``overdue(query=)`` keeps, of the late cases, those a list of the same query
    finds: by field, state, states left in or out and received time."""
    first = open_sample(engine)
    clock.set(START + 2 * H)
    second = open_sample(engine, customer="CUST-2", priority="high")
    moment = START + 30 * H
    run_due(engine, moment)
    assert {o.case.id for o in engine.overdue(moment)} == {first, second}
    queries = [
        CaseQuery(customer="CUST-2"),
        CaseQuery(priority="normal"),
        CaseQuery(state="received"),
        CaseQuery(state="apologised"),
        CaseQuery(states=("received",)),
        CaseQuery(not_states=("received",)),
        CaseQuery(received_from=START + H),
        CaseQuery(received_until=START + H),
        CaseQuery(branch="Guangzhou"),
        CaseQuery(branch="Shenzhen"),
    ]
    for query in queries:
        listed = {c.id for c in engine.page(query, limit=500).items}
        late = {o.case.id for o in engine.overdue(moment, query=query)}
        assert late == listed & {first, second}, query


def test_verify_finds_a_deadline_row_that_does_not_match(engine: Engine) -> None:
    """A deadline moved in the database is reported against the history's plan."""
    case_id = open_sample(engine)
    with engine.db.begin() as conn:
        conn.execute(
            update(deadlines_table)
            .where(deadlines_table.c.clock == "first_response")
            .values(due_at=START + 100 * H)
        )
    report = engine.verify()
    assert [(p.case_id, p.seq) for p in report.problems] == [(case_id, None)]
    assert "pending deadlines differ" in report.problems[0].reason


def test_replan_moves_a_case_to_a_new_policy(db_url: str, clock: FixedClock) -> None:
    """A changed configuration does not touch open cases until replanned explicitly."""
    from casework.machines.sla import DEFAULT_DOCUMENT
    from casework.workflow import Settings

    with Engine.open(db_url, clock=clock) as engine:
        case_id = open_sample(engine)
        old_version = engine.get(case_id).sla_policy
    document = {**DEFAULT_DOCUMENT, "name": "strict"}
    document["clocks"] = {
        **DEFAULT_DOCUMENT["clocks"],
        "first_response": {"runs_in": ["received"], "within_s": 2 * 3600},
    }
    strict = Settings(sla=document)
    with Engine.open(db_url, clock=clock, config=strict) as engine:
        assert engine.get(case_id).sla_policy == old_version
        assert run_due(engine, START + 3 * H) == []
        clock.set(START + 3 * H)
        case = engine.replan(case_id, actor="ops")
        assert case.sla_policy != old_version
        fired = run_due(engine, START + 3 * H)
        assert [(f.clock, f.level) for f in fired] == [("first_response", 1)]
        assert [e.event for e in engine.history(case_id)][-2:] == ["replan", "escalate"]
        assert engine.verify().ok


def test_replan_all_says_what_would_change_then_moves_every_open_case(
    db_url: str, clock: FixedClock
) -> None:
    """``replan --all --dry-run`` lists each open case's deadlines before and after and
    writes nothing; without --dry-run every open case moves; closed ones stay."""
    from casework.machines.sla import DEFAULT_DOCUMENT
    from casework.workflow import Settings
    from tests.support import snapshot

    with Engine.open(db_url, clock=clock) as engine:
        moving = [open_sample(engine, customer=f"C-{n}") for n in range(3)]
        closed = open_sample(engine)
        engine.fire(closed, "withdraw", actor="li.na", data={"reason": "不需要了"})
    document = {**DEFAULT_DOCUMENT, "name": "strict"}
    document["clocks"] = {
        **DEFAULT_DOCUMENT["clocks"],
        "first_response": {"runs_in": ["received"], "within_s": 2 * 3600},
    }
    with Engine.open(db_url, clock=clock, config=Settings(sla=document)) as engine:
        before = snapshot(engine)
        dry = engine.replan_all(actor="ops", dry_run=True)
        assert snapshot(engine) == before
        assert (dry["cases"], sorted(r["case_id"] for r in dry["moved"])) == (3, sorted(moving))
        row = dry["moved"][0]
        due = {d["clock"]: d["due_at"] for d in row["after"]}
        assert (
            due["first_response"]
            < {d["clock"]: d["due_at"] for d in row["before"]}["first_response"]
        )
        done = engine.replan_all(actor="ops")
        assert done["cases"] == 3
        assert {engine.get(c).sla_policy for c in moving} == {row["to"]}
        assert engine.replan_all(actor="ops", dry_run=True)["cases"] == 0
        assert engine.get(closed).sla_policy == row["from"]
        assert engine.verify().ok


def test_business_hours_over_a_weekend_and_a_holiday(db_url: str) -> None:
    """24 working hours on an office calendar with China's holidays skip the weekend and
    the National Day week, and use its make-up Saturday."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from casework.machines.sla import DEFAULT_DOCUMENT
    from casework.workflow.config import settings_from_mapping

    sla = {
        **DEFAULT_DOCUMENT,
        "calendars": {
            "office": {
                "timezone": "Asia/Shanghai",
                **{d: ["09:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
                "holidays": "CN",
            }
        },
        "clocks": {"first_response": {"runs_in": ["received"], "within_s": 24 * 3600,
                                      "calendar": "office", "warn_at": None}},
    }  # fmt: skip
    settings = settings_from_mapping({"sla": sla}, "test")
    shanghai = ZoneInfo("Asia/Shanghai")
    received = datetime(2026, 9, 30, 17, 0, tzinfo=shanghai)
    clock = FixedClock(received)
    with Engine.open(db_url, clock=clock, config=settings) as engine:
        case = engine.get(open_sample(engine, received_at=received))
        breach = next(d for d in case.deadlines if d["level"] == 1)
        assert breach["due_at"] == "2026-10-10T09:00:00.000000+00:00"  # 17:00 in Shanghai
        explained = engine.explain_sla(case.id)["clocks"][0]
        assert explained["calendar"] == "office"
        assert explained["next"]["closed_spans_skipped"]


def test_events_can_stop_and_start_a_clock(db_url: str, clock: FixedClock) -> None:
    """``stops_on`` ends a clock's cycle without a change of state; ``starts_on`` starts
    a new one; both are folded the same way by verification."""
    from casework.machines.sla import DEFAULT_DOCUMENT
    from casework.workflow import Settings

    clocks = {
        "call_back": {
            "runs_in": ["apologised", "needs_confirmed"], "within_s": 7200, "warn_at": None,
            "stops_on": ["contact"], "starts_on": ["assign"],
        },
    }  # fmt: skip
    settings = Settings(sla={**DEFAULT_DOCUMENT, "clocks": clocks})
    with Engine.open(db_url, clock=clock, config=settings) as engine:
        case_id = open_sample(engine)
        assert engine.get(case_id).deadlines == ()
        case = engine.fire(case_id, "apologise", actor="li.na")
        assert [(d["clock"], d["cycle"]) for d in case.deadlines] == [("call_back", 1)]
        clock.advance(H)
        case = engine.fire(case_id, "contact", actor="li.na", data={"kind": "call"})
        assert case.deadlines == ()
        assert case.state == "apologised"
        clock.advance(H)
        case = engine.fire(case_id, "assign", actor="li.na", data={"to": "wang.wei"})
        assert [(d["clock"], d["cycle"], d["due_at"][:19]) for d in case.deadlines] == [
            ("call_back", 2, "2026-11-23T05:00:00")
        ]
        assert engine.get(case_id) == case
        assert run_due(engine, START + 5 * H)[0].cycle == 2
        assert engine.verify().ok


BAD_POLICIES = [
    ({"calendars": {"x": {"timezone": "Mars/Base", "mon": ["09:00-12:00"]}}},
     "sla.calendars.x.timezone: unknown time zone"),
    ({"calendars": {"x": {"timezone": "UTC", "mon": ["09:00-12:00", "11:00-13:00"]}}},
     "sla.calendars.x: mon: periods 09:00-12:00 and 11:00-13:00 overlap"),
    ({"clocks": {"c": {"runs_in": ["received"], "within_s": 0}}},
     "sla.clocks.c.within_s: must be more than zero"),
    ({"clocks": {"c": {"runs_in": ["limbo"], "within_s": 60}}},
     "sla.clocks.c.runs_in: unknown state 'limbo'"),
    ({"ladder": [{"level": 1, "recipients": {"*": []}}]},
     "sla.ladder[0].recipients: must map branches"),
    ({"clocks": {"c": {"runs_in": ["received"], "within_s": 60, "calendar": "nope"}}},
     "sla.clocks.c.calendar: unknown calendar 'nope'"),
    ({"clocks": {"c": {"runs_in": ["received"], "within_s": 60, "stops_on": ["call"]}}},
     "sla.clocks.c.stops_on: unknown event 'call'"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), BAD_POLICIES)
def test_bad_sla_configuration_is_refused_with_file_and_key(
    tmp_path: Any, change: dict[str, Any], message: str
) -> None:
    """An invalid policy names the file, the key and the problem; nothing is applied."""
    import json

    from casework.machines.sla import DEFAULT_DOCUMENT
    from casework.workflow import ConfigError, load_settings

    document = {**DEFAULT_DOCUMENT, **change}
    path = tmp_path / "casework.toml"
    path.write_text("[sla]\n" + "\n".join(_toml_lines(document)))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value), (str(caught.value), json.dumps(change))


def _toml_lines(document: dict[str, Any]) -> list[str]:
    """A policy document as TOML key/value lines with inline tables."""
    return [f"{_toml(key)} = {_toml_value(value)}" for key, value in document.items()]


def _toml(key: str) -> str:
    return key if key.replace("_", "").isalnum() else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def test_show_and_history_of_an_escalated_case_in_the_cli(db_url: str) -> None:
    """``tick --now`` fires; ``list --overdue`` shows owner, level and lateness."""
    import json

    from click.testing import CliRunner

    from casework.workflow.cli import main

    runner = CliRunner()
    opened = runner.invoke(
        main,
        ["--db", db_url, "open", "--customer", "C", "--channel", "phone", "--category",
         "other", "--summary", "s", "--actor", "li.na", "--received-at",
         "2026-11-20T00:00:00+00:00"],
    )  # fmt: skip
    case_id = opened.stdout.strip()
    ticked = runner.invoke(
        main, ["--db", db_url, "tick", "--now", "2026-11-21T02:00:00Z", "--json"]
    )
    assert ticked.exit_code == 0, ticked.stderr
    levels = [f["level"] for f in json.loads(ticked.stdout)["fired"]]
    assert levels == [0, 1]
    late = runner.invoke(main, ["--db", db_url, "list", "--overdue"])
    assert case_id in late.stdout
    assert "li.na" in late.stdout
    explained = runner.invoke(main, ["--db", db_url, "sla", "explain", case_id])
    assert "first_response (cycle 1, running)" in explained.stdout


def test_targets_by_customer_tier_and_branch_the_strictest_wins(
    db_url: str, clock: FixedClock
) -> None:
    """``by_tier`` (the customer's tier attribute) and ``by_branch`` targets beside the
    others; where several apply the shortest wins, and ``sla explain`` names it."""
    from casework.machines.sla import DEFAULT_DOCUMENT
    from casework.workflow import Settings

    first = {**DEFAULT_DOCUMENT["clocks"]["first_response"],
             "by_tier": {"gold": 4 * 3600}, "by_branch": {"东莞长安店": 12 * 3600}}  # fmt: skip
    document = {**DEFAULT_DOCUMENT, "clocks": {**DEFAULT_DOCUMENT["clocks"],
                                               "first_response": first}}  # fmt: skip
    with Engine.open(db_url, clock=clock, config=Settings(sla=document)) as engine:
        gold = open_sample(engine, attributes={"tier": "gold"}, branch="广州")
        branch = open_sample(engine, branch="东莞长安店")
        both = open_sample(engine, attributes={"tier": "gold"}, branch="东莞长安店")
        plain = open_sample(engine, branch="广州")

        def target(case_id: str) -> tuple[float, str]:
            clock_ = next(c for c in engine.explain_sla(case_id)["clocks"]
                          if c["clock"] == "first_response")  # fmt: skip
            return clock_["target_s"], clock_["target_from"]

        assert target(gold) == (4 * 3600, "by_tier: gold")
        assert target(branch) == (12 * 3600, "by_branch: 东莞长安店")
        assert target(both) == (4 * 3600, "by_tier: gold")
        assert target(plain) == (24 * 3600, "default")
        assert engine.verify().ok


def test_each_branch_runs_its_clocks_on_its_own_calendar(db_url: str, clock: FixedClock) -> None:
    """``calendar_by_branch``: 东莞长安店 counts China's office hours, the Berlin branch
    Berlin's, others around the clock; ``sla explain`` names the rule; verify agrees."""
    from casework.machines.sla import DEFAULT_DOCUMENT, PolicyError, policy_from_document
    from casework.workflow import Settings

    week = {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    calendars = {
        "dongguan": {"timezone": "Asia/Shanghai", "holidays": ["2026-10-01"], **week},
        "berlin": {"timezone": "Europe/Berlin", **{d: ["09:00-17:00"] for d in week}},
    }
    first = {**DEFAULT_DOCUMENT["clocks"]["first_response"], "within_s": 8 * 3600,
             "by_priority": {}, "by_channel": {},
             "calendar_by_branch": {"东莞长安店": "dongguan", "Berlin": "berlin"}}  # fmt: skip
    document = {**DEFAULT_DOCUMENT, "calendars": calendars,
                "clocks": {**DEFAULT_DOCUMENT["clocks"], "first_response": first}}  # fmt: skip
    friday_3pm_china = START + timedelta(days=4, hours=6)  # 2026-11-27 15:00 +08:00
    clock.set(friday_3pm_china)
    with Engine.open(db_url, clock=clock, config=Settings(sla=document)) as engine:
        dongguan = open_sample(engine, branch="东莞长安店")
        berlin = open_sample(engine, branch="Berlin")
        elsewhere = open_sample(engine, branch="广州")

        def first_response(case_id: str) -> dict[str, Any]:
            return next(c for c in engine.explain_sla(case_id)["clocks"]
                        if c["clock"] == "first_response")  # fmt: skip

        # 3h on Friday (15:00-18:00), then 5h from Monday 09:00: 14:00 on 30 November
        assert first_response(dongguan)["target_at"] == "2026-11-30T06:00:00.000000+00:00"
        assert first_response(dongguan)["calendar_from"] == "calendar_by_branch: 东莞长安店"
        assert first_response(dongguan)["calendar"] == "dongguan"
        # 08:00 in Berlin: counting from 09:00 (08:00 UTC) to 17:00 Berlin time
        assert first_response(berlin)["target_at"] == "2026-11-27T16:00:00.000000+00:00"
        assert first_response(elsewhere)["target_at"] == "2026-11-27T15:00:00.000000+00:00"
        assert first_response(elsewhere)["calendar_from"] == "default"
        stored = engine.get(dongguan).sla["clocks"]
        assert [c.get("calendar") for c in stored if c["name"] == "first_response"] == ["dongguan"]
        clock.set(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
        fired = {f.case_id for f in run_due(engine, clock.now()) if f.level == 1}
        assert fired == {elsewhere}
        clock.set(datetime(2026, 11, 30, 6, 0, tzinfo=UTC))
        fired = {f.case_id for f in run_due(engine, clock.now()) if f.level == 1}
        assert fired == {berlin, dongguan}
        assert engine.verify().ok
    bad = {**first, "calendar_by_branch": {"东莞长安店": "shenzhen"}}
    with pytest.raises(PolicyError, match=r"calendar_by_branch\.东莞长安店: unknown calendar"):
        policy_from_document({**document, "clocks": {"first_response": bad}}, None)
