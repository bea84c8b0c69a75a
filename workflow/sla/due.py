"""Firing due deadlines: claim, record the warning or escalation, queue the mail.

Each batch is one transaction. A deadline row is claimed (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, the write lock on SQLite), marked fired, and its event, the case
update, the next deadline and the outbox row are written with it: all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from casework.machines.clocks import level_event, level_kind
from casework.machines.timers import TIMER_EVENTS
from casework.storage import CaseRecord, iso
from casework.storage.port import Store, Tx
from casework.storage.records import DueDeadline
from casework.workflow.mail.escalation import outbox_row
from casework.workflow.notify.queue import queue_notifications
from casework.workflow.transitions import SYSTEM_ACTOR, decide, plan_changes, stored_plan
from casework.workflow.webhooks.queue import queue_webhooks

if TYPE_CHECKING:
    from casework.machines import CaseRules
    from casework.workflow.access.organisation import Organisation
    from casework.workflow.notify.settings import NotifySettings


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
        return level_kind(self.level)

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


@dataclass
class _Batch:
    """The writes of one batch, flushed together (one round trip each on PostgreSQL)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    updates: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    cancels: list[tuple[str, tuple[str, int, int]]] = field(default_factory=list)
    plans: list[tuple[str, tuple[str, int, int], datetime]] = field(default_factory=list)
    unclaim: list[tuple[str, datetime, int]] = field(default_factory=list)
    mails: list[dict[str, Any]] = field(default_factory=list)
    happened: list[tuple[CaseRecord, dict[str, Any]]] = field(default_factory=list)

    def flush(
        self,
        store: Store,
        tx: Tx,
        now: datetime,
        organisation: Organisation | None = None,
        notify: NotifySettings | None = None,
    ) -> None:
        """Write everything, in an order that keeps every constraint (webhooks of a
        branch heard by its stores' cases too, under ``organisation``; the customers'
        notifications under ``notify``)."""
        store.deadlines.unclaim(tx, self.unclaim)
        store.cases.append_many(tx, self.events, self.updates)
        store.deadlines.cancel_many(tx, self.cancels)
        store.deadlines.plan_many(tx, self.plans)
        store.outbox.queue(tx, self.mails)
        queue_webhooks(store, tx, self.happened, now, organisation)
        queue_notifications(store, tx, self.happened, now, notify)


def process_due(
    store: Store,
    rules_for: Callable[[CaseRecord], CaseRules],
    now: datetime,
    batch: int,
    log: Any,
    max_batches: int | None = None,
    organisation: Organisation | None = None,
    notify: NotifySettings | None = None,
) -> list[Fired]:
    """Fire every deadline due at ``now``, ``batch`` per transaction (at most
    ``max_batches`` transactions, where given: the caller comes back for the rest).

    A batch claims its deadlines in one statement, locks their cases in id order (so
    two workers never wait on each other in a cycle), decides every event in memory
    and writes them together. Firing a level plans the next one, which may be due
    already (after downtime), so batches go on until a claim finds nothing due.
    ``rules_for`` gives a case's machine, policies and profile; ``log`` takes events.
    """
    fired: list[Fired] = []
    batches = 0
    # A lazy structlog proxy resolves its configuration at every line; once will do.
    log = log.bind() if callable(getattr(log, "bind", None)) else log
    while max_batches is None or batches < max_batches:
        batches += 1
        with store.transaction() as tx:
            due = store.deadlines.claim(tx, now, batch)
            if not due:
                return fired
            log.info("deadlines_claimed", count=len(due), now=iso(now))
            cases = store.cases.load_many(tx, sorted({d.case_id for d in due}))
            writes = _Batch()
            for deadline in sorted(due, key=lambda d: (d.case_id, d.due_at, d.level)):
                case = cases[deadline.case_id]
                result = _fire_one(rules_for(case), cases, deadline, now, writes, log)
                if result is not None:
                    fired.append(result)
            writes.flush(store, tx, now, organisation, notify)
    return fired


def _timer_data(case: CaseRecord, deadline: DueDeadline, late_by_s: float) -> dict[str, Any]:
    """What the event of a timer that ran out records: which timer, when it was due, who
    answers for it (the partner of a booked visit) and why it was set."""
    named = (deadline.clock, deadline.cycle)
    timers: list[dict[str, Any]] = list(case.sla.get("timers", ()))
    armed = next((t for t in timers if (t["name"], t["cycle"]) == named), {})
    data: dict[str, Any] = {
        "timer": deadline.clock,
        "cycle": deadline.cycle,
        "due_at": iso(deadline.due_at),
        "late_by_s": late_by_s,
    }
    for key in ("party", "purpose"):
        if armed.get(key):
            data["partner" if key == "party" else key] = armed[key]
    return data


def _fire_one(
    rules: CaseRules,
    cases: dict[str, CaseRecord],
    deadline: DueDeadline,
    now: datetime,
    writes: _Batch,
    log: Any,
) -> Fired | None:
    case = cases[deadline.case_id]
    before_plan = stored_plan(case)
    key = (deadline.clock, deadline.cycle, deadline.level)
    planned = before_plan.get(key)
    if planned is None:  # the history no longer plans it (a repaired row): drop it
        writes.unclaim.append(("cancelled", deadline.due_at, deadline.id))
        return None
    if planned.due_at > now:  # moved later: put the row right, fire it then
        writes.unclaim.append(("pending", planned.due_at, deadline.id))
        return None
    occurred = max(deadline.due_at, case.last_event_at)
    late_by_s = round((now - deadline.due_at).total_seconds(), 3)
    timer = TIMER_EVENTS.get(deadline.clock)
    if timer is not None:
        event, data = timer, _timer_data(case, deadline, late_by_s)
    else:
        event = level_event(deadline.level)
        data = {
            "clock": deadline.clock,
            "cycle": deadline.cycle,
            "level": deadline.level,
            "due_at": iso(deadline.due_at),
            "late_by_s": late_by_s,
        }
    step = decide(rules, case, event, data, SYSTEM_ACTOR, occurred, now)
    writes.events.append(step.record)
    writes.updates.append((step.update, case.version))
    after_plan = before_plan if step.plan is None else step.plan
    cancelled, planned_now = plan_changes(before_plan, after_plan)
    writes.cancels += [(case.id, k) for k in cancelled if k != key]  # the claimed one fired
    writes.plans += [(case.id, p.key, p.due_at) for p in planned_now]
    policy = rules.policy(case.sla_policy)
    assert policy is not None
    target_at = deadline.due_at  # a timer ran out: the owner hears of it, like a warning
    if timer is None:
        clock = next(c for c in step.before.sla.clocks if c.name == deadline.clock)
        target_at = clock.target_at(policy) or target_at  # a due clock is counting
    writes.mails.append(outbox_row(policy, case, deadline, target_at, now))
    cases[case.id] = replace(case, **step.update)
    writes.happened.append((cases[case.id], step.record))
    log.info(
        "deadline_fired",
        case_id=case.id,
        clock=deadline.clock,
        level=deadline.level,
        kind=timer or level_kind(deadline.level),
        late_by_s=late_by_s,
    )
    return Fired(case.id, deadline.clock, deadline.cycle, deadline.level, deadline.due_at, now)
