"""Reading cases: one case, its history and its fold; lists and pages of cases; a case
named by a prefix of its id."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from casework.machines import Folded, MachineRegistry
from casework.machines.clocks import BREACHED, SlaState
from casework.machines.sla import SlaPolicy
from casework.storage import CaseRecord
from casework.storage.records import CaseQuery
from casework.workflow import validation
from casework.workflow.cases.paging import (
    Page,
    cursor_after,
    due_cursor_after,
    page_limit,
    position,
)
from casework.workflow.clock import aware
from casework.workflow.errors import CaseNotFound, InvalidInput, TimeOutOfOrder, UnknownChoice
from casework.workflow.results import Event, Replay
from casework.workflow.transitions import with_deadlines

if TYPE_CHECKING:
    from casework.workflow.context import Context

MIN_PREFIX = 4
"""The shortest case-id prefix :func:`resolve` takes."""


def get(context: Context, case_id: str) -> CaseRecord:
    """The case, or :class:`CaseNotFound`."""
    case_id = validation.case_ref(case_id)
    case = context.store.cases.get(case_id)
    if case is None:
        raise CaseNotFound(case_id)
    return with_deadlines(case)


def case_with_events(context: Context, case_id: str) -> tuple[CaseRecord, list[Event]]:
    """The case's row and its events, oldest first, or :class:`CaseNotFound`."""
    case, events = context.store.cases.with_events(validation.case_ref(case_id))
    if case is None:
        raise CaseNotFound(case_id)
    return case, events


def timeline(context: Context, case_id: str) -> list[tuple[Event, Folded]]:
    """Each event of the case with the case as it stood right after it."""
    case, events = case_with_events(context, case_id)
    from casework.workflow.cases.history import fold_steps

    return list(fold_steps(context.rules(case), events))


def replay(context: Context, case_id: str, at: datetime | None = None) -> Replay:
    """The case rebuilt from its events alone, at the end or as it stood at ``at``."""
    moment = None if at is None else aware(at, "at")
    case, events = case_with_events(context, case_id)
    from casework.workflow.cases.history import fold_history

    folded = fold_history(context.rules(case), events, moment)
    if folded is None:
        raise TimeOutOfOrder(
            f"case {case_id} was not yet received at {moment}; it was received at "
            f"{case.received_at.isoformat()}",
            field="at",
        )
    last_at = max(e.occurred_at for e in events if moment is None or e.occurred_at <= moment)
    policy = context.policies.get(folded.policy)
    return Replay(
        case_id=case_id,
        machine=case.machine,
        machine_version=case.machine_version,
        state=folded.state,
        version=folded.version,
        owner=folded.owner,
        escalation_level=folded.escalation_level,
        facts=folded.facts,
        at=moment or last_at,
        sla=standing(policy, folded.sla, moment or last_at),
    )


def resolve(context: Context, ref: str, branch: str | None = None) -> str:
    """The id of the case ``ref`` names: its id, or a unique prefix of at least
    :data:`MIN_PREFIX` characters; among ``branch``'s cases only, if given."""
    ref = validation.case_ref(ref)
    store = context.store
    exact = store.cases.get(ref)
    units = None if branch is None else context.settings.organisation.covered(branch)
    if exact is not None and (units is None or exact.branch in units):
        return ref
    if len(ref) < MIN_PREFIX:
        if exact is not None:
            raise CaseNotFound(ref)
        return ref
    found = (
        store.cases.ids_starting(ref, 6)
        if units is None
        else sorted({i for unit in units for i in store.cases.ids_starting(ref, 6, unit)})[:6]
    )
    if len(found) == 1:
        return found[0]
    if not found:
        raise CaseNotFound(ref)
    shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
    raise InvalidInput(
        f"{ref!r} begins several cases: {shown}; give more of the id", field="case_id"
    )


def known_state(registry: MachineRegistry, state: str | None) -> None:
    """Refuse a state no installed machine has (a list of it would be empty for ever)."""
    if state is None:
        return
    states = sorted({s for d in registry for s in d.states})
    if state not in states:
        raise UnknownChoice("state", state, states)


def closed_states(context: Context) -> tuple[str, ...]:
    """The states in which a case of some machine is closed (final)."""
    return tuple(sorted({state for d in context.registry for state in d.final_states}))


def scoped(context: Context, query: CaseQuery) -> CaseQuery:
    """``query`` with its ``branch`` standing for the units it covers: a branch of
    ``[organisation]`` and its stores, a store or another unit itself."""
    if query.branch is None:
        return query
    units = context.settings.organisation.covered(query.branch)
    if query.branches is not None:
        units = units & frozenset(query.branches)
    return replace(query, branch=None, branches=tuple(sorted(units)))


def matching(context: Context, query: CaseQuery, limit: int | None = None) -> list[CaseRecord]:
    """The cases matching ``query`` (its branch: the units it covers), in received order."""
    known_state(context.registry, query.state)
    return context.store.cases.matching(scoped(context, query), limit=limit)


def page(
    context: Context,
    query: CaseQuery,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    by_due: bool = False,
    count: bool = False,
) -> Page:
    """One page of the cases matching ``query`` from ``cursor`` on (see
    :meth:`~casework.workflow.engine.Engine.page`)."""
    known_state(context.registry, query.state)
    query = scoped(context, query)
    store = context.store
    size = page_limit(limit)
    after = None if cursor is None else position(cursor)
    if after is not None and (len(after) == 3) != by_due:
        raise InvalidInput("cursor belongs to a list in another order", field="cursor")
    if by_due:
        due_after = cast("tuple[datetime | None, datetime, str] | None", after)
        ranked = store.cases.by_due(replace(query, after_due=due_after), size + 1)
        items = [with_deadlines(c) for c, _ in ranked[:size]]
        more = len(ranked) > size
        following = due_cursor_after(items[-1], ranked[size - 1][1]) if more else None
    else:
        received_after = cast("tuple[datetime, str] | None", after)
        found = store.cases.matching(replace(query, after=received_after), limit=size + 1)
        items = [with_deadlines(c) for c in found[:size]]
        more = len(found) > size
        following = cursor_after(items[-1]) if more else None
    total = store.cases.count(query) if count else None
    return Page(items, following, total)


def standing(policy: SlaPolicy | None, sla: SlaState, moment: datetime) -> dict[str, Any]:
    """How a case's clocks stood at ``moment``: used, paused, remaining, breached."""
    clocks = []
    for clock in sla.clocks:
        used = clock.used_at(moment, policy) if policy is not None else clock.elapsed
        outcome = clock.outcome(moment, policy)
        clocks.append(
            {
                "clock": clock.name,
                "cycle": clock.cycle,
                "running": clock.running,
                "paused": clock.running and clock.counting_since is None,
                "used_s": used.total_seconds(),
                "target_s": clock.target.total_seconds(),
                "remaining_s": max(clock.target - used, timedelta(0)).total_seconds(),
                "overdue_s": max(used - clock.target, timedelta(0)).total_seconds(),
                "breached": outcome == BREACHED,
                "outcome": outcome,
                "warned": clock.warned,
                "level": clock.level,
            }
        )
    return {"policy": None if policy is None else policy.version, "waiting": sla.waiting,
            "clocks": clocks}  # fmt: skip
