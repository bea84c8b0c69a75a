"""Cases that know each other: a repeat found at opening, links, merges that end the
duplicate and stop its clocks at once; any sequence of them verifies."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casework.workflow import CaseNotFound, Engine, EventNotAllowed, FixedClock, InvalidInput
from casework.workflow.cli import main
from tests.support import START, open_sample

H = timedelta(hours=1)
PHONE = {"serial_number": "SN-864209", "product": "华为 Mate 60", "purchase_date": "2026-10-01"}


def test_a_complaint_about_the_same_phone_of_the_same_customer_is_a_repeat(
    db_url: str, clock: FixedClock
) -> None:
    with Engine.open(db_url, clock=clock) as engine:
        first = open_sample(engine, customer="王先生", attributes=PHONE)
        clock.advance(30 * 24 * H)
        other_phone = open_sample(engine, customer="王先生",
                                  attributes={**PHONE, "serial_number": "SN-1"})  # fmt: skip
        again = engine.open_case(
            customer="王先生", channel="phone", category="not_fixed_first_visit",
            summary="又坏了", actor="李娜", attributes=PHONE,
        )  # fmt: skip
        assert again.facts["repeat_of"] == first
        (link,) = [e for e in engine.history(again.id) if e.event == "link"]
        assert (link.data["kind"], link.actor) == ("repeat", "casework")
        assert "repeat_of" not in engine.get(other_phone).facts
        clock.advance(60 * 24 * H)
        late = open_sample(engine, customer="王先生", attributes=PHONE)
        assert engine.get(late).facts.get("repeat_of") == again.id  # the latest of them
        clock.advance(91 * 24 * H)
        much_later = open_sample(engine, customer="王先生", attributes=PHONE)
        assert "repeat_of" not in engine.get(much_later).facts  # beyond 90 days
        assert [r["case"] for r in engine.related(first)] == [again.id]
        assert engine.related(first)[0]["direction"] == "from"
        assert engine.verify().ok
    shown = CliRunner().invoke(main, ["related", first, "--db", db_url])
    assert shown.exit_code == 0, shown.output
    assert again.id in shown.stdout
    assert "repeat" in shown.stdout


def test_a_merged_duplicate_ends_and_its_clocks_stop_in_one_transaction(
    engine: Engine, clock: FixedClock
) -> None:
    kept = open_sample(engine)
    duplicate = open_sample(engine, customer="CUST-1")
    clock.advance(25 * H)
    engine.process_due()
    assert engine.get(duplicate).escalation_level == 1
    with pytest.raises(InvalidInput, match="itself"):
        engine.fire(duplicate, "merge_into", actor="li.na", data={"case": duplicate})
    with pytest.raises(CaseNotFound):
        engine.fire(duplicate, "merge_into", actor="li.na", data={"case": "ffffffffffffffff"})
    merged = engine.fire(duplicate, "merge_into", actor="li.na", data={"case": kept[:6]})
    assert merged.state == "merged"
    assert merged.deadlines == ()
    assert merged.facts["case"] == kept  # named in full
    clock.advance(48 * H)
    engine.process_due()
    assert engine.get(duplicate).state == "merged"
    assert [e.event for e in engine.history(duplicate)][-1] == "merge_into"
    with pytest.raises(InvalidInput, match="merged itself"):
        engine.fire(kept, "merge_into", actor="li.na", data={"case": duplicate})
    assert [r["relation"] for r in engine.related(kept)] == ["merged"]
    assert engine.verify().ok


OPS = st.lists(
    st.tuples(
        st.sampled_from(["link", "merge_into", "apologise", "wait", "later"]),
        st.integers(0, 3),
        st.integers(0, 3),
    ),
    max_size=12,
)


@pytest.mark.slow  # 25 sequences on each database: the full suite runs it, not the fast lane
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_any_sequence_of_links_and_merges_keeps_every_case_its_replay(
    ops: list[tuple[str, int, int]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        clock = FixedClock(START)
        with Engine.open(f"sqlite:///{Path(folder) / 'c.db'}", clock=clock) as engine:
            cases = [open_sample(engine, customer=f"C-{n}") for n in range(4)]
            for op, a, b in ops:
                try:
                    if op == "later":
                        clock.advance((a + 1) * 7 * H)
                        engine.process_due()
                    elif op in ("link", "merge_into"):
                        engine.fire(cases[a], op, actor="li.na", data={"case": cases[b]})
                    elif op == "wait":
                        engine.fire(cases[a], "wait", actor="li.na", data={"reason": "part"})
                    else:
                        engine.fire(cases[a], op, actor="li.na")
                except (InvalidInput, EventNotAllowed):
                    continue  # refused, and said why: nothing was written
            assert engine.verify().ok
            for case_id in cases:
                case = engine.get(case_id)
                if case.state == "merged":
                    assert case.deadlines == ()
                    assert not case.sla.get("timers")
                history = engine.history(case_id)
                middle = history[len(history) // 2].occurred_at
                assert engine.replay(case_id, middle).version <= case.version
                assert engine.replay(case_id).state == case.state


def test_a_repeat_of_an_unfixed_fault_goes_up_a_level_at_once(
    engine: Engine, clock: FixedClock
) -> None:
    first = open_sample(engine, customer="王先生", attributes=PHONE)
    clock.advance(24 * H)
    again = engine.open_case(
        customer="王先生", channel="phone", category="not_fixed_first_visit",
        summary="同一个问题又出现了", actor="李娜", attributes=PHONE,
    )  # fmt: skip
    assert again.escalation_level == 1
    escalated = engine.history(again.id)[-1]
    assert (escalated.event, escalated.actor) == ("escalate_now", "casework")
    assert first in escalated.data["reason"]
    assert engine.context.store.outbox.rows(kind="escalation", case_id=again.id)


def test_the_warranty_rules_are_configured_as_a_new_version() -> None:
    from casework.workflow.config import settings_from_mapping
    from casework.workflow.errors import ConfigError

    settings = settings_from_mapping(
        {"warranty": {"return_days": 10, "brands": {"Nokia": "strict"},
                      "repeat_escalates": False}}, "t.toml"
    )  # fmt: skip
    assert settings.warranty.return_days == 10
    assert settings.warranty.brand_class("nokia") == "strict"
    assert settings.warranty.brand_class("apple") == "strict"  # the defaults stay
    assert settings.warranty.version != 1
    assert settings.repeat_escalates is False
    with pytest.raises(ConfigError, match="brands"):
        settings_from_mapping({"warranty": {"brands": {"x": "lenient"}}}, "t.toml")
