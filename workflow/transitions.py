"""One transition of one case: decide, build the event row, and keep deadlines in step.

Used by :meth:`Engine.fire`, :meth:`Engine.open_case` and deadline processing alike,
inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from casework.machines import ENGINE_EVENTS, Allowed, Blocked, CaseRules, Folded, step
from casework.machines.clocks import (
    Planned,
    SlaState,
    level_label,
    planned,
    state_from_json,
    timer_deadlines,
)
from casework.machines.definition import (
    CLASSIFICATION_FACT,
    HAND_EVENTS,
    RECLASSIFY,
    MachineDefinition,
)
from casework.machines.timers import TIMER_EVENTS
from casework.storage import (
    EVENT_FORMAT,
    CaseRecord,
    canonical_event,
    canonical_json,
    chain_hash,
    iso,
)
from casework.storage.port import Store, Tx
from casework.workflow.errors import EventNotAllowed, GuardFailed

SYSTEM_ACTOR = "casework"
"""The actor of what casework records itself: due deadlines, links and escalations it
makes on its own."""
UNREAD = SlaState()
"""Stands in for clocks not read from the row: events that keep the state leave them be."""


def folded_from_case(case: CaseRecord, *, with_clocks: bool = True) -> Folded:
    """The fold a case row caches (``with_clocks=False``: without parsing its clocks)."""
    return Folded(
        case.state,
        case.version,
        case.owner,
        case.escalation_level,
        case.facts,
        state_from_json(case.sla) if with_clocks else UNREAD,
        case.sla_policy,
    )


def profile_of(case: CaseRecord | Mapping[str, Any]) -> dict[str, Any]:
    """The case fields that SLA targets and recipients depend on, as its ``reclassify``
    events left them (a case row's columns hold them already; an opening has none)."""
    # an opening's data is a dict, matched before the slower check of the Mapping ABC
    get = case.get if isinstance(case, (dict, Mapping)) else partial(getattr, case)
    return {
        "priority": get("priority"),
        "category": get("category"),
        "channel": get("channel"),
        "branch": get("branch"),
        "tier": (get("attributes") or {}).get("tier"),
    }


def classified_columns(case: CaseRecord, facts: Mapping[str, Any]) -> dict[str, Any]:
    """The case row's columns after a ``reclassify``: priority, category, channel and
    the ``tier`` attribute as the fold's facts now say."""
    changed = facts.get(CLASSIFICATION_FACT, {})
    columns = {name: changed.get(name, getattr(case, name)) for name in CLASSIFIED}
    attributes = dict(case.attributes)
    if "tier" in changed:
        attributes["tier"] = changed["tier"]
    columns["attributes"] = attributes
    return columns


CLASSIFIED = ("priority", "category", "channel")
"""The case columns a ``reclassify`` may change (besides the ``tier`` attribute)."""


@dataclass(frozen=True)
class Transition:
    """A decided transition: the folds before and after, the event row, the row update."""

    before: Folded
    after: Folded
    record: dict[str, Any]
    update: dict[str, Any]
    plan: dict[tuple[str, int, int], Planned] | None = None
    """The deadlines after it, where the clocks moved (``None``: the case's stay)."""


def allowed_now(definition: MachineDefinition, case: CaseRecord) -> tuple[str, ...]:
    """The events that could be recorded on ``case`` now, in the machine's order: those
    of its state whose guards could pass given its facts (no ``reopen`` after a
    satisfied follow-up), then on an open case ``wait`` if it is not waiting or
    ``resume`` if it is."""
    waiting = case.sla.get("waiting") is not None
    events = definition.allowed_events(case.state)
    if case.state not in definition.final_states:
        events += tuple(e for e in definition.agent_events if (e == "resume") == waiting)
        events += HAND_EVENTS
    return tuple(e for e in events if definition.could_pass(case.state, e, case.facts))


def decide(
    rules: CaseRules,
    case: CaseRecord,
    event: str,
    data: Mapping[str, Any],
    actor: str,
    occurred: datetime,
    recorded: datetime,
) -> Transition:
    """Apply ``event`` to the case's fold; raise if the machine refuses it.

    The clocks are read from the row only for events that can move them (a change of
    state, or an engine event); otherwise the row's clocks and plan stay as they are.
    """
    policy = rules.policy(case.sla_policy)
    clocks_move = (
        event in ENGINE_EVENTS
        or (policy is not None and event in policy.clock_events)
        or rules.definition.moves_timers(event)
    )
    before = folded_from_case(case, with_clocks=clocks_move)
    decision, after = step(rules, before, event, data, occurred)
    if isinstance(decision, Allowed) and not clocks_move and after.state != before.state:
        before = folded_from_case(case)
        decision, after = step(rules, before, event, data, occurred)
    if not isinstance(decision, Allowed):
        allowed = allowed_now(rules.definition, case)
        if isinstance(decision, Blocked):
            raise GuardFailed(
                case.id, event, before.state, allowed, decision.condition, decision.requirement
            )
        raise EventNotAllowed(case.id, event, before.state, allowed)
    record = event_row(
        case.id, after.version, event, before.state, after.state, actor, occurred, recorded,
        data, case.head_hash, case.event_format,
    )  # fmt: skip
    update = {
        "state": after.state,
        "version": after.version,
        "owner": after.owner,
        "facts": dict(after.facts),
        "escalation_level": after.escalation_level,
        "last_event_at": occurred,
        "head_hash": record["hash"],
    }
    if event == RECLASSIFY:
        update.update(classified_columns(case, after.facts))
    if after.sla is not before.sla:  # the clocks moved: store them and their plan
        plan = plan_of(rules, after)
        update["sla_policy"] = after.policy
        update["sla"] = sla_json(rules, after, plan)
        return Transition(before, after, record, update, plan)
    return Transition(before, after, record, update)


WAIT_ENDED_BY = "ended_by"
"""The data key of the ``resume`` a change of state records: the event that changed it."""


def decide_with_wait_ended(
    rules: CaseRules,
    case: CaseRecord,
    event: str,
    data: Mapping[str, Any],
    actor: str,
    occurred: datetime,
    recorded: datetime,
) -> list[Transition]:
    """The transitions ``event`` records: itself, preceded by a ``resume`` when it changes
    the state of a case that waits.

    A wait belongs to the handling step it was declared in: a case that moves on (or
    closes) no longer waits on the customer or the part, so its clocks count again from
    that instant. The ``resume`` is recorded, with ``ended_by`` naming the event, so the
    history says why the wait ended and replay needs no rule of its own.
    """
    step = decide(rules, case, event, data, actor, occurred, recorded)
    if step.after.state == step.before.state or step.before.sla.waiting is None:
        return [step]
    resumed = decide(rules, case, "resume", {WAIT_ENDED_BY: event}, actor, occurred, recorded)
    moved = decide(rules, moved_on(case, resumed.update), event, data, actor, occurred, recorded)
    return [resumed, moved]


def sla_json(
    rules: CaseRules, folded: Folded, plan: Mapping[tuple[str, int, int], Planned] | None = None
) -> dict[str, Any]:
    """The clocks and the pending deadlines of a fold (its ``plan`` where already
    computed), as the case row stores them."""
    deadlines = plan_of(rules, folded) if plan is None else plan
    return {**folded.sla.to_json(), "pending": list(pending_json(deadlines))}


def with_deadlines(case: CaseRecord) -> CaseRecord:
    """The case with its pending deadlines, as its row's clocks list them."""
    return moved_on(case, {})


def moved_on(case: CaseRecord, update: Mapping[str, Any]) -> CaseRecord:
    """The case after a transition's row ``update``, with its pending deadlines as its
    clocks then list them: ``dataclasses.replace`` with both, built field by field from
    the record's own (a fire builds one or two of them, and ``replace`` walks the
    dataclass's fields and its ``__init__`` each time, several times the cost)."""
    moved = object.__new__(CaseRecord)
    fields = moved.__dict__
    fields.update(case.__dict__)
    fields.update(update)
    fields["deadlines"] = tuple(fields["sla"].get("pending", ()))
    return moved


def stored_plan(case: CaseRecord) -> dict[tuple[str, int, int], Planned]:
    """The deadlines the case row says are pending: the plan of its last event that
    moved the clocks, kept with the row so that no event computes it twice."""
    return {
        (d["clock"], d["cycle"], d["level"]): Planned(
            d["clock"], d["cycle"], d["level"], datetime.fromisoformat(d["due_at"])
        )
        for d in case.sla.get("pending", ())
    }


def event_row(
    case_id: str,
    seq: int,
    event: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    occurred_at: datetime,
    recorded_at: datetime,
    data: Mapping[str, Any],
    prev_hash: str,
    v: int = EVENT_FORMAT,
) -> dict[str, Any]:
    """An event row of format ``v`` with its place in the hash chain; data as canonical
    JSON text."""
    data_json = canonical_json(data)
    canonical = canonical_event(
        case_id, seq, event, from_state, to_state, actor, occurred_at, recorded_at, data_json, v
    )
    return {
        "case_id": case_id,
        "seq": seq,
        "event": event,
        "from_state": from_state,
        "to_state": to_state,
        "actor": actor,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "data": data_json,
        "prev_hash": prev_hash,
        "hash": chain_hash(prev_hash, canonical),
    }


def plan_of(rules: CaseRules, folded: Folded) -> dict[tuple[str, int, int], Planned]:
    """The deadlines a fold implies, by key."""
    policy = rules.policy(folded.policy) if folded.policy else None
    deadlines = [] if policy is None else planned(policy, folded.sla)
    return {p.key: p for p in (*deadlines, *timer_deadlines(folded.sla))}


def pending_json(plan: Mapping[tuple[str, int, int], Planned]) -> tuple[dict[str, Any], ...]:
    """A plan as the case's ``deadlines`` field shows it, soonest first."""
    rows = [
        {"clock": p.clock, "cycle": p.cycle, "level": p.level,
         "kind": TIMER_EVENTS.get(p.clock) or level_label(p.level), "due_at": iso(p.due_at)}
        for p in plan.values()
    ]  # fmt: skip
    return tuple(sorted(rows, key=lambda d: (d["due_at"], d["clock"], d["level"])))


def plan_changes(
    before: Mapping[tuple[str, int, int], Planned],
    after: Mapping[tuple[str, int, int], Planned],
) -> tuple[list[tuple[str, int, int]], list[Planned]]:
    """Going from plan ``before`` to plan ``after``: the keys to cancel, the deadlines
    to plan (new ones, and those that moved)."""
    cancelled = list(before.keys() - after.keys())
    moved = [p for key, p in after.items() if key not in before or before[key] != p]
    return cancelled, moved


def sync_deadlines(
    store: Store,
    tx: Tx,
    case_id: str,
    before: Mapping[tuple[str, int, int], Planned],
    after: Mapping[tuple[str, int, int], Planned],
) -> list[Planned]:
    """Make the pending deadline rows go from plan ``before`` to plan ``after``; returns
    the deadlines planned or moved."""
    cancelled, moved = plan_changes(before, after)
    for key in cancelled:
        store.deadlines.cancel(tx, case_id, key)
    for plan in moved:
        store.deadlines.plan(tx, case_id, plan.key, plan.due_at)
    if moved:  # workers elsewhere hear of it at commit (PostgreSQL)
        store.deadlines.announce(tx, min(p.due_at for p in moved))
    return moved
