"""A proposed SLA policy replayed over a period: what it would have done, beside what
happened; the same policy gives back what happened, and nothing is written."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

from casework.machines.sla import DEFAULT_DOCUMENT, policy_from_document
from casework.workflow import Engine, FixedClock
from casework.workflow.display.periods import period_of
from casework.workflow.sla.whatif import simulate
from tests.support import START, open_sample, snapshot

H = timedelta(hours=1)


def _month(engine: Engine, clock: FixedClock) -> None:
    """Six complaints, some answered late, with the worker running all along."""
    for n in range(6):
        case_id = open_sample(engine, customer=f"C-{n}", branch="东莞长安店" if n % 2 else "广州")
        clock.advance(H)
        engine.process_due()
        if n % 3:
            clock.advance(n * 5 * H)
            engine.process_due()
            engine.fire(case_id, "apologise", actor="li.na")
    clock.advance(4 * 24 * H)
    engine.process_due()


def test_the_policy_in_force_gives_back_what_happened_and_nothing_is_written(
    engine: Engine, clock: FixedClock
) -> None:
    _month(engine, clock)
    policy = engine.policies.get(engine.get(engine.list()[0].id).sla_policy)
    assert policy is not None
    period, _ = period_of(month="2026-11", zone=UTC, now=clock.now())
    before = snapshot(engine)
    report = simulate(engine.context, policy, period)
    assert snapshot(engine) == before
    assert report["writes"] == 0
    assert report["cases"] == 6
    assert report["totals"]["proposed"] == report["totals"]["actual"]
    assert report["changed"] == []
    assert simulate(engine.context, policy, period) == report  # deterministic


def test_a_tighter_target_shows_the_breaches_it_would_add_and_where(
    engine: Engine, clock: FixedClock
) -> None:
    _month(engine, clock)
    tighter = {**DEFAULT_DOCUMENT, "name": "tighter", "clocks": {
        **DEFAULT_DOCUMENT["clocks"],
        "first_response": {**DEFAULT_DOCUMENT["clocks"]["first_response"], "within_s": 4 * 3600},
    }}  # fmt: skip
    machine = engine.registry.get("complaint")
    policy = policy_from_document(tighter, machine.states, machine.events)
    period, _ = period_of(month="2026-11", zone=UTC, now=clock.now())
    report = simulate(engine.context, policy, period)
    first = next(r for r in report["by_clock"] if r["name"] == "first_response")
    assert first["more_breaches"] > 0
    assert report["totals"]["proposed"]["warnings"] >= report["totals"]["actual"]["warnings"]
    assert {c["case_id"] for c in report["changed"]}
    assert sum(r["more_breaches"] for r in report["by_branch"]) == first["more_breaches"] + sum(
        r["more_breaches"] for r in report["by_clock"] if r["name"] != "first_response"
    )
    assert START.tzinfo is UTC


def test_the_command_writes_the_page_and_says_what_the_proposal_leaves_out(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from casework.workflow.cli import main

    with Engine.open(db_url, clock=clock) as engine:
        _month(engine, clock)
    proposal = tmp_path / "tighter.toml"
    proposal.write_text(
        '[sla]\nname = "tighter"\n[sla.clocks.first_response]\nruns_in = ["received"]\n'
        'within_s = 3600\n[[sla.ladder]]\nlevel = 1\nname = "店长"\nafter_s = 0\n'
        'recipients = { "*" = ["dianzhang@example.com"] }\n',
        encoding="utf-8",
    )
    page = tmp_path / "whatif.html"
    args = ["--db", db_url, "--tz", "Asia/Shanghai", "simulate", "--policy", str(proposal),
            "--month", "2026-11", "--html", str(page)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "note: The proposal has no clock resolution, follow_up" in result.stdout
    assert "no case climbs past level 1" in result.stdout
    html = page.read_text(encoding="utf-8")
    assert "What if policy tighter had been in force" in html
    assert "东莞长安店" in html
    assert CliRunner().invoke(main, args).exit_code == 2  # the page exists: --force replaces it
