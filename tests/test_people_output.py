"""Output made for the people who read it: Chinese that lines up, near misses named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, timedelta

import click
import pytest
from click.testing import CliRunner, Result

from casework.workflow import Engine, EventNotAllowed, UnknownChoice, UnknownEvent
from casework.workflow.cli import main
from casework.workflow.cli.support import display_width
from casework.workflow.clock import FixedClock
from tests.support import START, open_sample


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


def test_the_allowed_list_leaves_out_what_the_case_s_facts_already_refuse(engine: Engine) -> None:
    case_id = open_sample(engine)
    engine.fire(case_id, "apologise", actor="li.na")
    engine.fire(case_id, "confirm_needs", actor="li.na")
    engine.fire(case_id, "resolve", actor="li.na", data={"solution": "上门更换主板"})
    engine.fire(case_id, "follow_up", actor="li.na", data={"satisfaction": 5})
    with pytest.raises(EventNotAllowed) as refused:
        engine.fire(case_id, "resolve", actor="li.na")
    assert "reopen" not in refused.value.allowed  # a satisfied customer: no reopening
    assert "note" in refused.value.allowed


def _list(db_url: str, *args: str) -> Result:
    result = CliRunner().invoke(main, ["list", *args, "--db", db_url])
    assert result.exit_code == 0, result.output
    return result


def test_lists_come_fifty_a_page_with_a_cursor_open_cases_next_deadline_first(
    db_url: str,
) -> None:
    clock = FixedClock(START)
    with Engine.open(db_url, clock=clock) as engine:
        opened = []
        for n in range(55):
            clock.set(START + timedelta(minutes=n))
            priority = "urgent" if n == 54 else "normal"  # its clocks are shorter: due first
            opened.append(open_sample(engine, customer=f"C-{n}", priority=priority))
        clock.set(START + timedelta(hours=2))
        engine.fire(opened[0], "withdraw", actor="li.na", data={"reason": "不需要了"})
    first = _list(db_url).stdout.splitlines()
    assert len(first) == 1 + 50 + 1
    assert first[-1].startswith("50 of 55 cases; the next 50: add --cursor ")
    cursor = first[-1].rsplit(" ", 1)[-1]
    rest = _list(db_url, "--cursor", cursor).stdout.splitlines()
    assert len(rest) == 1 + 5 + 1
    assert rest[-1] == "the last 5 of 55 cases"
    by_due = json.loads(_list(db_url, "--open", "--json").stdout)
    assert len(by_due) == 54
    assert by_due[0]["id"] == opened[54]  # urgent: the nearest deadline
    assert opened[0] not in {c["id"] for c in by_due}
    closed = json.loads(_list(db_url, "--closed", "--json").stdout)
    assert [c["id"] for c in closed] == [opened[0]]
    page = json.loads(_list(db_url, "--open", "--json", "--paged", "--limit", "20").stdout)
    assert len(page["items"]) == 20
    following = json.loads(
        _list(db_url, "--open", "--json", "--paged", "--cursor", page["next_cursor"]).stdout
    )
    seen = [c["id"] for c in page["items"] + following["items"]]
    assert seen == [c["id"] for c in by_due][: len(seen)]
    assert following["next_cursor"] is None
    window = json.loads(
        _list(
            db_url, "--since", "2026-11-23T01:10:00Z", "--until", "2026-11-23T01:20:00Z", "--json"
        ).stdout
    )
    assert [c["customer"] for c in window] == [f"C-{n}" for n in range(10, 20)]
    wrong = CliRunner().invoke(main, ["list", "--open", "--cursor", cursor, "--db", db_url])
    assert wrong.exit_code == 2
    assert "another order" in wrong.stderr


def test_overdue_lists_count_late_clocks_per_branch(db_url: str) -> None:
    clock = FixedClock(START)
    with Engine.open(db_url, clock=clock) as engine:
        for branch in ("东莞长安店", "东莞长安店", "广州天河店"):
            open_sample(engine, branch=branch)
        clock.advance(timedelta(days=2))
        engine.process_due()
    late = _list(db_url, "--overdue").stdout.splitlines()
    assert late[-1] == "3 cases late (6 late clocks); by branch: 东莞长安店 2, 广州天河店 1"
    mine = _list(db_url, "--overdue", "--branch", "广州天河店").stdout.splitlines()
    assert mine[-1] == "1 cases late (2 late clocks); by branch: 广州天河店 1"


def test_the_access_note_is_for_auditors_and_the_verbose(db_url: str) -> None:
    from casework.storage.database import make_engine, write_access

    with Engine.open(db_url) as engine:
        case_id = open_sample(engine)
    db = make_engine(db_url)
    writable = write_access(db) is not None
    db.dispose()
    note = "auditing needs only read access"
    history = CliRunner().invoke(main, ["history", case_id, "--db", db_url])
    assert note not in history.stderr
    verbose = CliRunner().invoke(main, ["history", case_id, "-v", "--db", db_url])
    verify = CliRunner().invoke(main, ["verify", "--db", db_url])
    assert (note in verbose.stderr) == writable
    assert (note in verify.stderr) == writable


def _commands() -> list[tuple[tuple[str, ...], click.Command]]:
    def walk(
        command: click.Command, path: tuple[str, ...]
    ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                yield from walk(sub, (*path, name))

    return list(walk(main, ()))


def test_every_command_ends_its_help_with_examples_that_parse() -> None:
    import shlex

    from casework.workflow.cli.examples import EXAMPLES

    for path, _ in _commands():
        assert " ".join(path) in EXAMPLES, f"casework {' '.join(path)} has no examples"
        shown = CliRunner().invoke(main, [*path, "--help"])
        assert shown.exit_code == 0, shown.output
        assert "Examples:\n  casework" in shown.stdout, path
    for lines in EXAMPLES.values():
        for line in lines:
            words = shlex.split(line, comments=True)
            if words[0] == "curl":
                continue
            command: click.Command = main
            ctx = click.Context(main, info_name="casework")
            while isinstance(command, click.Group) and words and not words[0].startswith("-"):
                found = command.get_command(ctx, words[0])
                assert found is not None, line
                command, words = found, words[1:]
                ctx = click.Context(command, info_name=command.name, parent=ctx)
            command.make_context(command.name, words, parent=ctx.parent)  # parses, or raises


def test_valid_values_are_listed_in_full_and_missing_options_together() -> None:
    opened = CliRunner().invoke(main, ["open", "--help"]).stdout
    assert "missed_appointment, not_fixed_first_visit" in opened
    assert "store, phone, letter, web, regulator, media" in opened
    fired = CliRunner().invoke(main, ["fire", "--help"]).stdout
    assert "apologise, confirm_needs, resolve" in fired
    missing = CliRunner().invoke(main, ["open", "--channel", "phone"])
    assert missing.exit_code == 2
    assert missing.stderr.startswith("casework: error: missing options: --customer, --summary")


def test_the_sla_report_leads_with_a_summary_and_its_page_says_what_its_json_says(
    engine: Engine, clock: FixedClock
) -> None:
    from casework.workflow.display.periods import period_of
    from casework.workflow.reports.business import HANDOVERS_LISTED, sla_page, sla_report

    ids = []
    for n in range(HANDOVERS_LISTED + 5):
        branch = "东莞长安店" if n % 2 else "广州天河店"
        ids.append(open_sample(engine, branch=branch, actor="李娜", customer=f"C-{n}"))
    for n, case_id in enumerate(ids):
        clock.advance(timedelta(hours=1))
        engine.fire(case_id, "assign", actor="李娜", data={"to": "王芳"})
        if n % 3:
            engine.fire(case_id, "apologise", actor="王芳")
    clock.advance(timedelta(days=1))  # every first response due, no resolution yet
    period, _ = period_of(month="2026-11", zone=UTC, now=clock.now())
    report = sla_report(engine.context, period)
    assert "first_response_hours" not in report  # percentiles, not every raw value
    times = report["first_response_time"]
    assert times["count"] == len([n for n in range(len(ids)) if n % 3])
    assert times["p50_h"] <= times["p90_h"] <= times["p95_h"] <= times["max_h"]
    assert sum(b["cases"] for b in times["histogram"]) == times["count"]
    summary = report["summary"]
    assert summary["late_now"]["cases"] == len(ids) - times["count"]
    assert [r["name"] for r in summary["worst_branches"]] == sorted(
        {"东莞长安店", "广州天河店"},
        key=lambda b: next(r["compliance"] for r in report["first_response_by"]["branch"]
                           if r["name"] == b),
    )  # fmt: skip
    cells = {(r["branch"], r["category"]) for r in report["branch_by_category"]}
    assert cells == {("东莞长安店", "service_delayed"), ("广州天河店", "service_delayed")}
    assert report["handover_cases"] == len(ids)
    assert len(report["handovers"]) == HANDOVERS_LISTED
    page = sla_page(report)
    from casework.workflow.labels import label

    for row in report["clocks"]:
        rate = "-" if row["compliance"] is None else f"{row['compliance']:.1f}%"
        assert f"<td>{label('en', 'clock', row['name'])}</td>" in page  # labels
        assert f'<td class="num">{rate}</td>' in page
    assert f"median {times['p50_h']:.1f} h" in page
    assert f"{len(ids)} cases changed owner; the {HANDOVERS_LISTED} with the most" in page
    mine, _ = period_of(month="2026-11", zone=UTC, branch="东莞长安店", now=clock.now())
    branch = sla_report(engine.context, mine)
    assert branch["cases"] == len(ids) // 2
    assert {r["name"] for r in branch["first_response_by"]["branch"]} == {"东莞长安店"}
