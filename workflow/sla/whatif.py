"""What a proposed SLA policy would have done: the cases received in a period replayed
under it, the agents' events at their real times, the deadlines fired as the worker
would have fired them; beside what actually happened. Nothing is written.

A case's history is a deterministic fold, so the same cases, events and policy always
give the same report. The engine's own events (warnings, escalations, timers running
out, replans) are left out of the replay and re-derived from the proposed policy.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from casework.machines import Allowed, CaseRules, Folded, opened, step
from casework.machines.clocks import BREACHED, Planned, level_event, state_from_json
from casework.machines.definition import SYSTEM_EVENTS
from casework.machines.sla import SlaPolicy
from casework.machines.timers import TIMER_EVENTS
from casework.storage.chain import parse_json
from casework.storage.transition_sql import CASE_COLUMNS, EVENT_COLUMNS
from casework.workflow.cases.history import Grouped
from casework.workflow.transitions import plan_of, profile_of

if TYPE_CHECKING:
    from casework.workflow.context import Context
    from casework.workflow.display.periods import Period


_CASE = {name: index for index, name in enumerate(CASE_COLUMNS)}
_EVENT, _OCCURRED, _DATA = (EVENT_COLUMNS.index(n) for n in ("event", "occurred_at", "data"))
_TIMER_EVENTS = frozenset(TIMER_EVENTS.values())


class _Replay:
    """One case refolded under the proposed policy: its agents' events applied at their
    times, and before each (and at the end) every deadline due fired as the worker would.

    The plan is recomputed only when the clocks moved (most events leave them be)."""

    def __init__(self, rules: CaseRules, folded: Folded, counts: Counter[str]) -> None:
        self.rules, self.folded, self.counts = rules, folded, counts
        self._planned_for: Any = None
        self._next: list[Planned] = []

    def _due_before(self, until: datetime) -> Planned | None:
        sla = self.folded.sla
        if sla is not self._planned_for:
            self._planned_for = sla
            plan = plan_of(self.rules, self.folded).values()
            self._next = sorted(plan, key=lambda p: p.due_at)
        first = self._next[0] if self._next else None
        return first if first is not None and first.due_at < until else None

    def fire_due(self, until: datetime) -> None:
        """Fire every deadline due before ``until``, earliest first."""
        counts = self.counts
        while (deadline := self._due_before(until)) is not None:
            timer = TIMER_EVENTS.get(deadline.clock)
            if timer is not None:
                event, data = timer, {"timer": deadline.clock, "cycle": deadline.cycle}
                counts[timer] += 1
            else:
                event = level_event(deadline.level)
                data = {"clock": deadline.clock, "cycle": deadline.cycle, "level": deadline.level}
                counts["warnings" if deadline.level == 0 else f"level {deadline.level}"] += 1
            counts["mails"] += 1
            decision, after = step(self.rules, self.folded, event, data, deadline.due_at)
            if not isinstance(decision, Allowed):  # cannot happen for a planned deadline
                return
            self.folded = after

    def apply(self, event: str, data: Mapping[str, Any], at: datetime) -> None:
        """The agent's ``event`` at ``at``, after the deadlines due before it."""
        self.fire_due(at)
        decision, after = step(self.rules, self.folded, event, data, at)
        if isinstance(decision, Allowed):
            self.folded = after
        else:
            self.counts["events refused"] += 1


def _actual(counts: Counter[str], event: str, data: Any) -> None:
    """Count what the worker actually fired: ``event`` with its stored ``data`` text."""
    if event == "sla_warning":
        counts["warnings"] += 1
    elif event == "escalate":
        counts[f"level {parse_json(data).get('level')}"] += 1
    elif event in _TIMER_EVENTS:
        counts[event] += 1
    else:
        return
    counts["mails"] += 1


def _outcomes(clocks: Any, policy: SlaPolicy | None, now: datetime) -> dict[str, str]:
    return {c.name: o for c in clocks if (o := c.outcome(now, policy)) is not None}


def simulate(context: Context, policy: SlaPolicy, period: Period) -> dict[str, Any]:
    """The report of ``policy`` over the cases received in ``period``, beside what
    happened: breaches per clock, branch and category, warnings, escalations by level,
    timers and mails, and the cases whose outcome changes.

    One read snapshot streams the period's cases and events in case order; an event's
    data is parsed only where the fold reads it."""
    now = context.clock.now()
    totals = {"actual": Counter[str](), "proposed": Counter[str]()}
    per: dict[str, dict[tuple[str, str], Counter[str]]] = {
        d: defaultdict(Counter) for d in ("clock", "branch", "category")
    }
    changed = []
    cases = events = 0
    known = {policy.version: policy}
    units = None if period.branch is None else context.settings.organisation.covered(period.branch)
    with context.store.audit.snapshot(received=(period.start, period.end)) as streams:
        histories = Grouped(streams.events)  # the same cases' events, in the same order
        for case in streams.cases:
            case_id = case[0]
            rows = histories.take(case_id)
            if not rows:
                continue  # a case without events: `casework verify` says what is wrong
            branch = case[_CASE["branch"]] or None
            if units is not None and branch not in units:  # a branch: its stores too
                continue
            cases += 1
            definition = context.registry.get(
                case[_CASE["machine"]], case[_CASE["machine_version"]]
            )
            opening = rows[0]
            data = parse_json(opening[_DATA])
            rules = CaseRules(definition, known, profile_of(data))
            counts: Counter[str] = Counter()
            at = datetime.fromisoformat(opening[_OCCURRED])
            replay = _Replay(rules, opened(rules, str(data.get("owner")), at, policy.version),
                             totals["proposed"])  # fmt: skip
            events += len(rows)
            for row in rows[1:]:
                event = row[_EVENT]
                if event in SYSTEM_EVENTS:
                    _actual(counts, event, row[_DATA])
                    continue
                state = replay.folded.state
                data = parse_json(row[_DATA]) if rules.needs_data(state, event) else {}
                replay.apply(event, data, datetime.fromisoformat(row[_OCCURRED]))
            replay.fire_due(now)
            totals["actual"].update(counts)
            category = case[_CASE["category"]] or "-"
            proposed = _outcomes(replay.folded.sla.clocks, policy, now)
            actual = _outcomes(
                state_from_json(case[_CASE["sla"]]).clocks,
                context.policies.get(case[_CASE["sla_policy"]]),
                now,
            )
            for side, outcomes in (("actual", actual), ("proposed", proposed)):
                for clock, outcome in outcomes.items():
                    for dimension, value in (("clock", clock), ("branch", branch or "-"),
                                             ("category", category)):  # fmt: skip
                        per[dimension][(value, side)][outcome] += 1
            if {k for k, v in actual.items() if v == BREACHED} != {
                k for k, v in proposed.items() if v == BREACHED
            }:
                changed.append({"case_id": case_id, "received_at": case[_CASE["received_at"]],
                                "branch": branch, "category": category, "actual": actual,
                                "proposed": proposed})  # fmt: skip
    changed.sort(key=itemgetter("received_at", "case_id"))
    return {
        "report": "simulate",
        "policy": {"name": policy.name, "version": policy.version},
        **period.heading(context.clock.now()),
        "cases": cases,
        "events": events,
        "totals": {side: dict(sorted(c.items())) for side, c in totals.items()},
        **{f"by_{d}": _table(per[d]) for d in ("clock", "branch", "category")},
        "changed": changed,
        "notes": differences(
            context.policies.current_for(context.settings.default_machine), policy
        ),
        "writes": 0,
    }


def differences(current: SlaPolicy | None, proposed: SlaPolicy) -> list[str]:
    """What a reader of the comparison should know the proposal leaves out beside the
    policy in force: clocks, ladder levels, timer durations."""
    if current is None:
        return []
    notes = []
    missing = [c.name for c in current.clocks if c.name not in {p.name for p in proposed.clocks}]
    if missing:
        notes.append(f"The proposal has no clock {', '.join(missing)}: nothing of it is counted.")
    if len(proposed.ladder) < len(current.ladder):
        notes.append(
            f"The proposal's ladder has {len(proposed.ladder)} level(s), the policy in force "
            f"{len(current.ladder)}: no case climbs past level {len(proposed.ladder)}."
        )
    timers = sorted(set(current.timers) - set(proposed.timers))
    if timers:
        notes.append(
            f"The proposal sets no durations for the timer(s) {', '.join(timers)} "
            "([sla.timers]): under it they never run out."
        )
    return notes


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
