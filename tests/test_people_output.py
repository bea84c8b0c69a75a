"""Output made for the people who read it: Chinese that lines up, near misses named."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from tests.support import START, open_sample
from workflow import Engine, EventNotAllowed, UnknownChoice, UnknownEvent
from workflow.cli import main
from workflow.cli.support import display_width
from workflow.clock import FixedClock


def test_chinese_takes_two_columns_and_tables_line_up(db_url: str) -> None:
    assert display_width("东莞长安店") == 10
    assert display_width("li.na") == 5
    with Engine.open(db_url) as engine:
        open_sample(engine, actor="李娜", customer="王先生")
        open_sample(engine, actor="li.na", customer="CUST-0042")
    shown = CliRunner().invoke(main, ["list", "--db", db_url])
    assert shown.exit_code == 0, shown.output
    header, *rows = shown.stdout.splitlines()
    for name, value in (("state", "received"), ("owner", None)):
        column = display_width(header[: header.index(name)])
        for row in rows:  # each row's value starts under its header, Chinese or not
            start = row.index(value) if value else row.index("  ", row.index("received")) + 2
            assert display_width(row[:start]) == column, (name, row)


def test_an_unknown_event_is_named_with_the_nearest_one(engine: Engine) -> None:
    case_id = open_sample(engine)
    with pytest.raises(UnknownEvent) as caught:
        engine.fire(case_id, "apologize", actor="li.na")
    assert caught.value.suggestion == "apologise"
    assert "did you mean 'apologise'" in str(caught.value)
    with pytest.raises(UnknownEvent) as far:
        engine.fire(case_id, "xyzzy", actor="li.na")
    assert far.value.suggestion is None


def test_a_state_that_does_not_exist_is_an_error(engine: Engine) -> None:
    with pytest.raises(UnknownChoice, match="received"):
        engine.list(state="recieved")
    assert engine.list(state="received") == []


def test_a_unique_prefix_names_a_case_and_the_actor_comes_from_the_environment(
    db_url: str,
) -> None:
    with Engine.open(db_url) as engine:
        first = open_sample(engine)
        open_sample(
            engine, case_id=first[:4] + "0" * 12 if first[4] != "0" else first[:4] + "1" * 12
        )
    runner = CliRunner(env={"CASEWORK_ACTOR": "王芳"})
    fired = runner.invoke(main, ["fire", first[:8], "apologise", "--db", db_url, "--json"])
    assert fired.exit_code == 0, fired.output
    assert '"state": "apologised"' in fired.stdout
    with Engine.open(db_url) as engine:
        assert engine.history(first)[-1].actor == "王芳"
    both = runner.invoke(main, ["show", first[:4], "--db", db_url])
    assert both.exit_code == 2
    assert "begins several cases" in both.stderr
    none = runner.invoke(main, ["show", "ffff0000", "--db", db_url])
    assert none.exit_code == 2
    assert "no case 'ffff0000'" in none.stderr


def test_lists_filter_by_owner_branch_and_the_rest(db_url: str) -> None:
    with Engine.open(db_url) as engine:
        mine = open_sample(engine, actor="李娜", branch="东莞长安店", category="missed_appointment")
        open_sample(engine, actor="wang.wei", branch="广州天河店")
    runner = CliRunner()
    listed = runner.invoke(
        main, ["list", "--owner", "李娜", "--branch", "东莞长安店", "--db", db_url, "--json"]
    )
    assert [c["id"] for c in json.loads(listed.stdout)] == [mine]
    none = runner.invoke(main, ["list", "--category", "other", "--db", db_url, "--json"])
    assert json.loads(none.stdout) == []


def test_the_outbox_by_case_and_kind_with_addresses_and_counts(db_url: str) -> None:
    clock = FixedClock(START)
    with Engine.open(db_url, clock=clock) as engine:
        late = open_sample(engine)
        open_sample(engine)
        clock.advance(timedelta(days=1, hours=1))
        engine.process_due()
    shown = CliRunner().invoke(
        main, ["outbox", "--case", late[:8], "--kind", "warning", "--db", db_url]
    )
    assert shown.exit_code == 0, shown.output
    _, *rows, counts = shown.stdout.splitlines()
    assert len(rows) == 1
    assert late in rows[0]
    assert "li.na (no address)" in rows[0]  # an agent id, and no mail.agent_domain
    assert counts == "pending 4"  # every mail of the outbox, whatever the filter
    document = json.loads(
        CliRunner()
        .invoke(main, ["outbox", "--kind", "escalation", "--db", db_url, "--json"])
        .stdout
    )
    assert {m["kind"] for m in document["mails"]} == {"escalation"}
    assert document["counts"]["pending"] == 4


def test_the_allowed_list_offers_resume_only_to_a_waiting_case(engine: Engine) -> None:
    case_id = open_sample(engine)
    with pytest.raises(EventNotAllowed) as refused:
        engine.fire(case_id, "reopen", actor="li.na")
    assert "wait" in refused.value.allowed
    assert "resume" not in refused.value.allowed
    engine.fire(case_id, "wait", actor="li.na", data={"reason": "customer"})
    with pytest.raises(EventNotAllowed) as waiting:
        engine.fire(case_id, "reopen", actor="li.na")
    assert "resume" in waiting.value.allowed
    assert "wait" not in waiting.value.allowed
