"""The outbox row of a warning or an escalation: its recipients and the data its mail is
written from when it is sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from casework.machines.clocks import WARNING, level_kind
from casework.machines.sla import SlaPolicy
from casework.storage import CaseRecord, iso
from casework.storage.records import DueDeadline


def manual_escalation_row(
    policy: SlaPolicy, case: CaseRecord, level: int, seq: int, now: datetime
) -> dict[str, Any]:
    """The mail of an escalation by hand (``escalate_now``, event ``seq`` of ``case``):
    the recipients of the ladder's ``level`` hear of it as of a timed one, the clock
    named ``escalate_now``."""
    by_hand = DueDeadline(0, case.id, "escalate_now", seq, level, now)
    row = outbox_row(policy, case, by_hand, now, now)
    return {**row, "deadline_id": None}


def outbox_row(
    policy: SlaPolicy,
    case: CaseRecord,
    deadline: DueDeadline,
    target_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The mail for a fired deadline of ``case`` (the case as it was before the event).

    A warning goes to the owner; a ladder level to that level's recipients for the
    case's branch. ``target_at`` is when the clock's target runs out.
    """
    if deadline.level == WARNING:
        recipients: tuple[str, ...] = (case.owner,)
        level_name = "warning"
    else:
        rung = policy.ladder[deadline.level - 1]
        recipients = rung.recipients_for(case.branch)
        level_name = rung.name
    return {
        "dedupe_key": f"{case.id}:{deadline.clock}:{deadline.cycle}:{deadline.level}",
        "case_id": case.id,
        "deadline_id": deadline.id,
        "kind": level_kind(deadline.level),
        "level": deadline.level,
        "recipients": list(recipients),
        "body": {
            "case_id": case.id,
            "clock": deadline.clock,
            "cycle": deadline.cycle,
            "level": deadline.level,
            "level_name": level_name,
            "due_at": iso(deadline.due_at),
            "target_at": iso(target_at),
            "processed_at": iso(now),
            "owner": case.owner,
            "branch": case.branch,
            "category": case.category,
            "channel": case.channel,
            "priority": case.priority,
            "state": case.state,
            "customer": case.customer,
            "summary": case.summary,
            "received_at": iso(case.received_at),
            "version": case.version,
        },
        "next_attempt_at": now,
        "created_at": now,
    }
