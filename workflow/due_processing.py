"""Firing due deadlines: claim, record the warning or escalation, queue the mail.

Each batch is one transaction. A deadline row is claimed (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, the write lock on SQLite), marked fired, and its event, the case
update, the next deadline and the outbox row are written with it: all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from machines.clocks import WARNING
from storage import iso
from storage.deadline_sql import DueDeadline
from workflow.escalation_mail import outbox_row
from workflow.transitions import decide, folded_from_case, plan_of, sync_deadlines

if TYPE_CHECKING:
    from workflow.engine import Engine

SYSTEM_ACTOR = "casework"


@dataclass(frozen=True)
class Fired:
    """One deadline that fired: what it was, when it fell due and how late it was handled."""

    case_id: str
    clock: str
    cycle: int
    level: int
    due_at: datetime
    processed_at: datetime

    @property
    def late_by(self) -> timedelta:
        """How long after falling due it was processed."""
        return self.processed_at - self.due_at

    @property
    def kind(self) -> str:
        """``warning`` or ``escalation``."""
        return "warning" if self.level == WARNING else "escalation"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "case_id": self.case_id,
            "clock": self.clock,
            "cycle": self.cycle,
            "level": self.level,
            "kind": self.kind,
            "due_at": iso(self.due_at),
            "processed_at": iso(self.processed_at),
            "late_by_s": round(self.late_by.total_seconds(), 3),
        }


def process_due(engine: Engine, now: datetime, batch: int) -> list[Fired]:
    """Fire every deadline due at ``now``, ``batch`` per transaction.

    Firing a level plans the next one, which may be due already (after downtime), so
    batches go on until a claim finds nothing due.
    """
    fired: list[Fired] = []
    while True:
        with engine._sql.transaction() as cursor:
            due = engine._deadlines.claim(cursor, now, batch)
            # Case order is lock order: two workers never wait on each other in a cycle.
            for deadline in sorted(due, key=lambda d: (d.case_id, d.due_at)):
                result = _fire_one(engine, cursor, deadline, now)
                if result is not None:
                    fired.append(result)
        if not due:
            return fired


def _fire_one(engine: Engine, cursor: Any, deadline: DueDeadline, now: datetime) -> Fired | None:
    case = engine._sql.load_case(cursor, deadline.case_id)
    if case is None:  # pragma: no cover - a foreign key keeps the case
        return None
    rules = engine._rules(case)
    before_plan = plan_of(rules, folded_from_case(case))
    key = (deadline.clock, deadline.cycle, deadline.level)
    planned = before_plan.get(key)
    if planned is None:  # the history no longer plans it (a repaired row): drop it
        engine._deadlines.cancel(cursor, case.id, key)
        return None
    if planned.due_at > now:  # moved later: put the row right, fire it then
        engine._deadlines.plan(cursor, case.id, key, planned.due_at)
        return None
    if not engine._deadlines.fire(cursor, deadline.id, now):  # pragma: no cover
        return None
    event = "sla_warning" if deadline.level == WARNING else "escalate"
    occurred = max(deadline.due_at, case.last_event_at)
    data = {
        "clock": deadline.clock,
        "cycle": deadline.cycle,
        "level": deadline.level,
        "due_at": iso(deadline.due_at),
        "late_by_s": round((now - deadline.due_at).total_seconds(), 3),
    }
    step = decide(rules, case, event, data, SYSTEM_ACTOR, occurred, now)
    if not engine._sql.append(cursor, step.record, step.update, expected=case.version):
        raise RuntimeError(f"case {case.id} moved while its row was locked")  # pragma: no cover
    sync_deadlines(engine._deadlines, cursor, case.id, before_plan, plan_of(rules, step.after))
    policy = rules.policy(case.sla_policy)
    assert policy is not None
    clock = next(c for c in step.before.sla.clocks if c.name == deadline.clock)
    calendar = policy.calendar_of(policy.clock(deadline.clock))
    assert clock.counting_since is not None
    target_at = calendar.add(clock.counting_since, clock.target - clock.elapsed)
    engine._deadlines.queue_mail(cursor, outbox_row(policy, case, deadline, target_at, now))
    engine._log.info(
        "deadline_fired",
        case_id=case.id,
        clock=deadline.clock,
        level=deadline.level,
        kind="warning" if deadline.level == WARNING else "escalation",
        late_by_s=data["late_by_s"],
    )
    return Fired(case.id, deadline.clock, deadline.cycle, deadline.level, deadline.due_at, now)
