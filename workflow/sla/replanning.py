"""Moving open cases to their machine's configured SLA policy (a ``replan`` event each)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from casework.machines import CaseRules
from casework.machines.sla import SlaPolicy
from casework.storage import CaseRecord
from casework.storage.records import CaseQuery
from casework.workflow import validation
from casework.workflow.cases.firing import record
from casework.workflow.cases.reading import closed_states, get
from casework.workflow.errors import InvalidInput
from casework.workflow.transitions import decide, pending_json, profile_of

if TYPE_CHECKING:
    from casework.workflow.context import Context


def replan(context: Context, case_id: str, *, actor: str) -> CaseRecord:
    """Move an open case to the configured SLA policy, recording a ``replan`` event."""
    case_id = validation.case_ref(case_id)
    actor = validation.agent_id(actor, "actor")
    policy = stored_current(context, get(context, case_id).machine)
    return record(context, case_id, "replan", actor=actor, data={"policy": policy.version})


def stored_current(context: Context, machine: str) -> SlaPolicy:
    """The configured policy of ``machine``, stored (once) so cases can refer to it."""
    policy = context.policies.current_for(machine)
    if policy is None:
        raise InvalidInput(f"machine {machine} has no SLA policy to move the case to")
    store = context.store
    with store.transaction() as tx:
        store.deadlines.store_policy(
            tx, policy.version, policy.name, policy.document, context.clock.now()
        )
    context.policies.refresh()
    return policy


def replan_all(context: Context, *, actor: str, dry_run: bool = False) -> dict[str, Any]:
    """Move every open case not under its machine's configured policy to it (a
    ``replan`` each), or with ``dry_run`` only say what would change. Returns the summary."""
    actor = validation.agent_id(actor, "actor")
    now = context.clock.now()
    moved = []
    by_policy: dict[str, int] = {}
    stored: set[str] = set()
    open_cases = CaseQuery(not_states=closed_states(context))
    for case in context.store.cases.matching(open_cases):
        policy = context.policies.current_for(case.machine)
        if policy is None or case.sla_policy in (None, policy.version):
            continue
        definition = context.definition(case.machine, case.machine_version)
        known = {**context.policies.known(case.sla_policy), policy.version: policy}
        rules = CaseRules(definition, known, profile_of(case))
        data = {"policy": policy.version}
        after = decide(rules, case, "replan", data, actor, now, now).plan or {}
        by_policy[str(case.sla_policy)] = by_policy.get(str(case.sla_policy), 0) + 1
        moved.append({
            "case_id": case.id, "from": case.sla_policy, "to": policy.version,
            "before": list(case.sla.get("pending", ())),
            "after": list(pending_json(after)),
        })  # fmt: skip
        if not dry_run:
            if case.machine not in stored:  # each policy stored once, not per case
                stored_current(context, case.machine)
                stored.add(case.machine)
            record(context, case.id, "replan", actor=actor, data=data)
    return {"dry_run": dry_run, "cases": len(moved), "from_policies": by_policy,
            "moved": moved}  # fmt: skip
