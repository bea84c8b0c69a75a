"""Output made for the people who read it: Chinese that lines up, near misses named."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.support import open_sample
from workflow import Engine, UnknownChoice, UnknownEvent
from workflow.cli import main
from workflow.cli.support import display_width


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
