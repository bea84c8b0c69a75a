"""Reading SLA state: the next due deadline, overdue cases, and how deadlines came about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from casework.machines.clocks import (
    ClockState,
    level_label,
    planned,
    state_from_json,
)
from casework.machines.definition import RECLASSIFIABLE, RECLASSIFY
from casework.machines.sla import SlaPolicy
from casework.storage import CaseRecord, EventRecord, iso
from casework.storage.records import CaseQuery
from casework.workflow.cases.classification import WAS
from casework.workflow.cases.reading import case_with_events, known_state, scoped
from casework.workflow.transitions import profile_of, with_deadlines

if TYPE_CHECKING:
    from casework.workflow.context import Context


@dataclass(frozen=True)
class Overdue:
    """A case whose clock has run past its target: by how much, at which level."""

    case: CaseRecord
    clock: str
    late_by: timedelta

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form: the case plus the clock and lateness."""
        return {
            **self.case.to_json(),
            "overdue_clock": self.clock,
            "late_by_s": round(self.late_by.total_seconds(), 3),
        }


def overdue(context: Context, now: datetime, query: CaseQuery | None = None) -> list[Overdue]:
    """Open cases with a clock past its target at ``now``, latest first; of those,
    with a ``query``, the cases it matches (its branch: the units it covers)."""
    result = []
    for case in matching(context, context.store.cases.late_candidates(now), query):
        policy = context.policies.get(case.sla_policy)
        if policy is None:
            continue
        for clock in state_from_json(case.sla).clocks:
            if clock.running:
                late = clock.used_at(now, policy) - clock.target
                if late > timedelta(0):
                    result.append(Overdue(case, clock.name, late))
    return sorted(result, key=lambda o: o.late_by, reverse=True)


QUERY_FIELDS = ("state", "owner", "customer", "channel", "category", "priority")
"""The fields of a ``CaseQuery`` a late case is matched on (besides its branch)."""


def matching(
    context: Context, cases: list[CaseRecord], query: CaseQuery | None
) -> list[CaseRecord]:
    """Of ``cases``, those ``query`` matches (its state checked, its branch standing for
    the units it covers, as in :func:`~casework.workflow.cases.reading.matching`); its
    paging fields (``after``, ``after_due``) are not read."""
    if query is None:
        return cases
    known_state(context.registry, query.state)
    units = scoped(context, query).branches
    given = [(n, getattr(query, n)) for n in QUERY_FIELDS if getattr(query, n) is not None]
    return [
        c
        for c in cases
        if all(getattr(c, name) == value for name, value in given)
        and (units is None or c.branch in units)
        and (query.states is None or c.state in query.states)
        and (query.not_states is None or c.state not in query.not_states)
        and (query.received_from is None or c.received_at >= query.received_from)
        and (query.received_until is None or c.received_at < query.received_until)
    ]


def explained(context: Context, case_id: str) -> dict[str, Any]:
    """How each SLA clock of the case stands now (:func:`explain`), or
    :class:`CaseNotFound`."""
    case, events = case_with_events(context, case_id)
    case = with_deadlines(case)
    return explain(case, events, context.policies.get(case.sla_policy), context.clock.now())


def explain(
    case: CaseRecord, history: list[EventRecord], policy: SlaPolicy | None, now: datetime
) -> dict[str, Any]:
    """How each clock of a case stands and how its next deadline was computed."""
    sla = state_from_json(case.sla)
    pauses = [
        {"event": e.event, "at": iso(e.occurred_at), "reason": e.data.get("reason")}
        for e in history
        if e.event in ("wait", "resume")
    ]
    document: dict[str, Any] = {
        "case_id": case.id,
        "policy": case.sla_policy,
        "policy_name": None if policy is None else policy.name,
        "waiting": sla.waiting,
        "pauses": pauses,
        "target_changes": target_changes(history),
        "clocks": [],
    }
    if policy is None:
        return document
    plans = {p.clock: p for p in planned(policy, sla)}
    for clock in sla.clocks:
        document["clocks"].append(_explain_clock(policy, case, clock, plans.get(clock.name), now))
    return document


def target_changes(history: list[EventRecord]) -> list[dict[str, Any]]:
    """Each event that changed what the case's targets are: a ``reclassify`` (the
    fields it changed, from and to) or a ``replan`` (the policy it moved to)."""
    changes = []
    policy = None
    for e in history:
        if e.event == "open":
            policy = e.data.get("policy")
        if e.event == RECLASSIFY:
            was = e.data.get(WAS) or {}
            changed = {k: [was.get(k), e.data[k]] for k in RECLASSIFIABLE if k in e.data}
        elif e.event == "replan":
            changed = {"policy": [policy, e.data.get("policy")]}
            policy = e.data.get("policy")
        else:
            continue
        changes.append({
            "seq": e.seq, "event": e.event, "at": iso(e.occurred_at), "actor": e.actor,
            "changed": changed, "reason": e.data.get("reason"),
        })  # fmt: skip
    return changes


def _explain_clock(
    policy: Any, case: CaseRecord, clock: ClockState, plan: Any, now: datetime
) -> dict[str, Any]:
    spec = policy.clock(clock.name)
    calendar = policy.calendar_named(clock.calendar, clock.name)
    profile = profile_of(case)
    # a clock that never ran (the follow-up before the case is resolved) stores no
    # target: show the one its first cycle will have, not zero
    target = clock.target if clock.cycle else spec.target_for(profile)
    applying = [
        f"by_{name}: {value}"
        for (name, value), within in spec.overrides.items()
        if profile.get(name) == value and within == target
    ]
    entry: dict[str, Any] = {
        "clock": clock.name,
        "runs_in": sorted(spec.runs_in),
        "cycle": clock.cycle,
        "running": clock.running,
        "counting": clock.counting_since is not None,
        "target_s": target.total_seconds(),
        "target_from": applying[0] if applying else "default",
        "started": clock.cycle > 0,
        "calendar": calendar.name,
        "calendar_from": f"calendar_by_branch: {case.branch}" if clock.calendar else "default",
        "calendar_version": calendar.version,
        "used_s": clock.used_at(now, policy).total_seconds(),
        "counting_since": None if clock.counting_since is None else iso(clock.counting_since),
        "elapsed_before_s": clock.elapsed.total_seconds(),
        "warned": clock.warned,
        "level": clock.level,
        "outcome": clock.outcome(now, policy),
        "target_at": None if (at := clock.target_at(policy)) is None else iso(at),
        "next": None,
    }
    if plan is not None and clock.counting_since is not None:
        since = clock.counting_since
        work = calendar.between(since, plan.due_at)
        entry["next"] = {
            "level": plan.level,
            "kind": level_label(plan.level),
            "due_at": iso(plan.due_at),
            "computed": (
                f"{calendar.name}.add({iso(since)}, {work.total_seconds():.0f}s of working time)"
            ),
            "closed_spans_skipped": [
                [iso(a), iso(b)]
                for a, b in calendar.closed_spans(clock.counting_since, plan.due_at)
            ],
        }
    return entry
