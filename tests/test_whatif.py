"""A proposed SLA policy replayed over a period: what it would have done, beside what
happened; the same policy gives back what happened, and nothing is written."""

from __future__ import annotations

from datetime import UTC, timedelta

from machines.sla import DEFAULT_DOCUMENT, policy_from_document
from tests.support import START, open_sample, snapshot
from workflow import Engine, FixedClock
from workflow.reports.business import period_of
from workflow.sla.whatif import simulate

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
    report = simulate(engine, policy, period)
    assert snapshot(engine) == before
    assert report["writes"] == 0
    assert report["cases"] == 6
    assert report["totals"]["proposed"] == report["totals"]["actual"]
    assert report["changed"] == []
    assert simulate(engine, policy, period) == report  # deterministic


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
    report = simulate(engine, policy, period)
    first = next(r for r in report["by_clock"] if r["name"] == "first_response")
    assert first["more_breaches"] > 0
    assert report["totals"]["proposed"]["warnings"] >= report["totals"]["actual"]["warnings"]
    assert {c["case_id"] for c in report["changed"]}
    assert sum(r["more_breaches"] for r in report["by_branch"]) == first["more_breaches"] + sum(
        r["more_breaches"] for r in report["by_clock"] if r["name"] != "first_response"
    )
    assert START.tzinfo is UTC
