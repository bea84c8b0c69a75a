"""What a proposed SLA policy would have done: the cases received in a period replayed
under it, the agents' events at their real times, the deadlines fired as the worker
would have fired them; beside what actually happened. Nothing is written.

A case's history is a deterministic fold, so the same cases, events and policy always
give the same report. The engine's own events (warnings, escalations, timers running
out, replans) are left out of the replay and re-derived from the proposed policy.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from machines import Allowed, CaseRules, Folded, opened, step
from machines.clocks import BREACHED, level_event, state_from_json
from machines.definition import SYSTEM_EVENTS
from machines.sla import SlaPolicy
from machines.timers import TIMER_EVENTS
from storage import CaseRecord, EventRecord
from workflow.cases.transitions import plan_of, profile_of

if TYPE_CHECKING:
    from workflow.engine import Engine
    from workflow.reports.business import Period


def _fire_due(rules: CaseRules, folded: Folded, until: datetime, counts: Counter[str]) -> Folded:
    """Fire every deadline of the fold due before ``until``, as the worker would."""
    while True:
        plan = plan_of(rules, folded)
        due = sorted((p for p in plan.values() if p.due_at < until), key=lambda p: p.due_at)
        if not due:
            return folded
        deadline = due[0]
        timer = TIMER_EVENTS.get(deadline.clock)
        if timer is not None:
            event, data = timer, {"timer": deadline.clock, "cycle": deadline.cycle}
            counts[timer] += 1
        else:
            event = level_event(deadline.level)
            data = {"clock": deadline.clock, "cycle": deadline.cycle, "level": deadline.level}
            counts["warnings" if deadline.level == 0 else f"level {deadline.level}"] += 1
        counts["mails"] += 1
        decision, after = step(rules, folded, event, data, deadline.due_at)
        if not isinstance(decision, Allowed):  # cannot happen for a planned deadline
            return folded
        folded = after


def replay_under(
    rules: CaseRules, case: CaseRecord, events: Iterable[EventRecord], policy: SlaPolicy,
    now: datetime,
) -> tuple[Folded, Counter[str]]:  # fmt: skip
    """The case's fold under ``policy`` up to ``now``, and what fired on the way."""
    counts: Counter[str] = Counter()
    opening, *rest = list(events)
    owner = str(opening.data.get("owner") or case.owner)
    folded = opened(rules, owner, opening.occurred_at, policy.version)
    for event in rest:
        if event.event in SYSTEM_EVENTS:
            continue
        folded = _fire_due(rules, folded, event.occurred_at, counts)
        decision, after = step(rules, folded, event.event, event.data, event.occurred_at)
        if isinstance(decision, Allowed):
            folded = after
        else:
            counts["events refused"] += 1
    return _fire_due(rules, folded, now, counts), counts


def _outcomes(clocks: Any, policy: SlaPolicy | None, now: datetime) -> dict[str, str]:
    return {c.name: o for c in clocks if (o := c.outcome(now, policy)) is not None}


def _actual(history: list[EventRecord]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for event in history:
        if event.event == "sla_warning":
            counts["warnings"] += 1
            counts["mails"] += 1
        elif event.event == "escalate":
            counts[f"level {event.data.get('level')}"] += 1
            counts["mails"] += 1
        elif event.event in TIMER_EVENTS.values():
            counts[event.event] += 1
            counts["mails"] += 1
    return counts


def simulate(engine: Engine, policy: SlaPolicy, period: Period) -> dict[str, Any]:
    """The report of ``policy`` over the cases received in ``period``, beside what
    happened: breaches per clock, branch and category, warnings, escalations by level,
    timers and mails, and the cases whose outcome changes."""
    now = engine.clock.now()
    cases, _ = engine.store.received_between(period.start, period.end, ())
    if period.branch is not None:
        cases = [c for c in cases if c.branch == period.branch]
    totals = {"actual": Counter[str](), "proposed": Counter[str]()}
    per: dict[str, dict[tuple[str, str], Counter[str]]] = {
        d: defaultdict(Counter) for d in ("clock", "branch", "category")
    }
    changed = []
    for case in cases:
        case_row, history = engine.store.case_with_events(case.id)
        assert case_row is not None
        definition = engine.registry.get(case.machine, case.machine_version)
        rules = CaseRules(definition, {policy.version: policy}, profile_of(case))
        folded, counts = replay_under(rules, case, history, policy, now)
        totals["proposed"].update(counts)
        totals["actual"].update(_actual(history))
        proposed = _outcomes(folded.sla.clocks, policy, now)
        actual = _outcomes(
            state_from_json(case.sla).clocks, engine.policies.get(case.sla_policy), now
        )
        for side, outcomes in (("actual", actual), ("proposed", proposed)):
            for clock, outcome in outcomes.items():
                for dimension, value in (("clock", clock), ("branch", case.branch or "-"),
                                         ("category", case.category or "-")):  # fmt: skip
                    per[dimension][(value, side)][outcome] += 1
        if {k for k, v in actual.items() if v == BREACHED} != {
            k for k, v in proposed.items() if v == BREACHED
        }:
            changed.append({"case_id": case.id, "branch": case.branch,
                            "category": case.category, "actual": actual,
                            "proposed": proposed})  # fmt: skip
    return {
        "report": "simulate",
        "policy": {"name": policy.name, "version": policy.version},
        **period.heading(engine),
        "cases": len(cases),
        "totals": {side: dict(sorted(c.items())) for side, c in totals.items()},
        **{f"by_{d}": _table(per[d]) for d in ("clock", "branch", "category")},
        "changed": changed,
        "writes": 0,
    }


def _table(counts: Mapping[tuple[str, str], Counter[str]]) -> list[dict[str, Any]]:
    names = sorted({name for name, _ in counts})
    rows = []
    for name in names:
        row: dict[str, Any] = {"name": name}
        for side in ("actual", "proposed"):
            c = counts.get((name, side), Counter())
            decided = c["met"] + c[BREACHED]
            row[side] = {"met": c["met"], "breached": c[BREACHED], "open": c["open"],
                         "compliance": None if not decided
                         else round(100.0 * c["met"] / decided, 1)}  # fmt: skip
        row["more_breaches"] = row["proposed"]["breached"] - row["actual"]["breached"]
        rows.append(row)
    return rows
