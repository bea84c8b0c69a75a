"""Firing an event: the input checked, then one transaction that decides it against the
stored case by the case's machine, appends it to the hash chain, moves the case row on
with ``WHERE version = expected`` and queues what it causes (deadlines, webhooks,
notifications, escalation mails). Either all of it is stored or none of it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework.machines import OPEN_EVENT, SYSTEM_EVENTS, CaseRules, MachineDefinition
from casework.machines.definition import ATTACH_EVENT, HAND_EVENTS, MANUAL_ESCALATION, RECLASSIFY
from casework.storage import CaseRecord
from casework.storage.database import HostConnection, after_commit
from casework.storage.errors import WriteConflict
from casework.workflow import validation
from casework.workflow.cases.classification import reclassify_data
from casework.workflow.cases.relations import other_case
from casework.workflow.cases.remedies import (
    NO_EVIDENCE,
    RemedyEvidence,
    checked_data,
    remedy_evidence,
)
from casework.workflow.clock import aware
from casework.workflow.errors import (
    CaseNotFound,
    ConcurrentUpdate,
    InvalidInput,
    TimeOutOfOrder,
    UnknownEvent,
)
from casework.workflow.mail.escalation import manual_escalation_row
from casework.workflow.notify.queue import queue_notifications
from casework.workflow.partners.faults import fault_data
from casework.workflow.transitions import (
    decide_with_wait_ended,
    moved_on,
    stored_plan,
    sync_deadlines,
)
from casework.workflow.webhooks.queue import queue_webhooks

if TYPE_CHECKING:
    from casework.storage.port import Tx
    from casework.workflow.context import Context


def fire(
    context: Context,
    case_id: str,
    event: str,
    *,
    actor: str,
    data: Mapping[str, Any] | None = None,
    note: str | None = None,
    at: datetime | None = None,
    expected_version: int | None = None,
    within: str | None = None,
    role: str | None = None,
    connection: HostConnection | None = None,
) -> CaseRecord:
    """Check an event as a person or a host gives it, then record it
    (:meth:`~casework.workflow.engine.Engine.fire` says what each argument does)."""
    case_id = validation.case_ref(case_id)
    actor = validation.agent_id(actor, "actor")
    event = validation.text(event, "event", max_chars=64)
    if event in SYSTEM_EVENTS or event == OPEN_EVENT:
        raise InvalidInput(
            f"{event!r} is recorded by casework itself, not fired: the worker "
            "records deadlines as they fall due, a replan records new ones",
            field="event",
        )
    if event == ATTACH_EVENT:
        raise InvalidInput(
            "a file is attached with its content and kind, not fired as an event",
            field="event",
        )
    payload = validation.event_data(data, note, context.settings)
    context.joinable(connection)
    if role is not None:
        within_authority(context, case_id, role, event, payload)
    evidence = NO_EVIDENCE
    if context.registry.evidenced(event):
        evidence = remedy_evidence(context.store.cases.with_events(case_id)[1])
    if payload.get("case") and context.registry.relates(event):
        payload = other_case(context, case_id, event, payload, within)
    given = None if at is None else aware(at, "at")
    if given is not None:
        context.not_in_future(given, context.clock.now(), "at")
    return record(
        context, case_id, event, actor=actor, data=payload, at=given,
        expected_version=expected_version, evidence=evidence, connection=connection,
    )  # fmt: skip


def checked_outside(context: Context, event: str) -> bool:
    """Whether :func:`fire` checks ``event`` against what it reads outside its
    transaction, which is committed data only: the other case a relating event names
    (``link``, ``merge_into``), the history the remedy rules read as evidence. Writes
    sharing one transaction do not see each other there (two cases merged into each
    other, each checked before the other's merge)."""
    registry = context.registry
    return registry.evidenced(event) or registry.relates(event)


def record(
    context: Context,
    case_id: str,
    event: str,
    *,
    actor: str,
    data: Mapping[str, Any],
    at: datetime | None = None,
    expected_version: int | None = None,
    evidence: RemedyEvidence = NO_EVIDENCE,
    connection: HostConnection | None = None,
) -> CaseRecord:
    """The transaction of :func:`fire`, for checked input (``evidence``: what the
    warranty rules read from the case's history, for ``decide_remedy``), inside the
    host's on ``connection`` if given."""
    store, settings = context.store, context.settings
    context.server_clock.check()
    try:
        with store.transaction(connection) as tx:
            case = store.cases.load(tx, case_id)
            if case is None:
                raise CaseNotFound(case_id)
            if expected_version is not None and case.version != expected_version:
                raise ConcurrentUpdate(case_id, expected_version, case.version)
            # Read the clock only once the case is ours: a writer we waited for may
            # have stored a later event. Without an explicit time the event happens
            # now, and never before its predecessor (clocks of two hosts may differ).
            now = context.clock.now()
            occurred = at or now
            if occurred < case.last_event_at:
                raise TimeOutOfOrder(_before_previous(at, now, case.last_event_at), field="at")
            rules = context.rules(case)
            _known_event(rules.definition, case_id, event)
            handover = rules.definition.handover
            if handover is not None and event == handover[0] and handover[1] in data:
                owner = validation.agent_id(data[handover[1]], handover[1])
                data = {**data, handover[1]: owner}
            checks = rules.definition.checks
            if event in checks.remedy:
                data = checked_data(settings.warranty, case, event, data, occurred, evidence)
            if event in checks.faults:
                data = fault_data(settings.partners, data)
            if event == RECLASSIFY and case.state not in rules.definition.final_states:
                data = reclassify_data(settings, rules.definition, case, data)
            steps = decide_with_wait_ended(rules, case, event, data, actor, occurred, now)
            after_case = case
            happened = []
            for step in steps:
                if not store.cases.append(
                    tx, step.record, step.update, expected=after_case.version
                ):
                    raise ConcurrentUpdate(case_id, case.version, None)
                after_case = moved_on(after_case, step.update)
                happened.append((after_case, step.record))
            queue_webhooks(store, tx, happened, now, settings.organisation)
            queue_notifications(store, tx, happened, now, settings.notify)
            _escalated_by_hand(context, rules, tx, happened, now)
            moved = []
            after_plan = next((s.plan for s in reversed(steps) if s.plan is not None), None)
            if after_plan is not None:  # the clocks moved: so do the deadline rows
                moved = sync_deadlines(store, tx, case_id, stored_plan(case), after_plan)
    except WriteConflict:
        raise ConcurrentUpdate(case_id, expected_version or 0, None) from None
    context.planned(moved, connection)

    def logged() -> None:
        for step in steps:
            context.log.info(
                "event_fired",
                case_id=case_id,
                event_name=step.record["event"],
                from_state=step.before.state,
                to_state=step.after.state,
                version=step.after.version,
                actor=actor,
            )

    after_commit(connection, logged)  # at once, or once the transaction it joined commits
    return after_case


def within_authority(
    context: Context, case_id: str, role: str, event: str, data: Mapping[str, Any]
) -> None:
    """Refuse a decision above ``role``'s authority, naming who may take it and the
    case's ladder level where they stand (:mod:`casework.workflow.access.authority`)."""
    store = context.store

    def ladder(level: int) -> str | None:
        case = store.cases.get(case_id)
        policy = None if case is None else context.rules(case).policy(case.sla_policy)
        names = {} if policy is None else {rung.level: rung.name for rung in policy.ladder}
        return names.get(level)

    def standing() -> int:
        case = store.cases.get(case_id)
        return 0 if case is None else case.escalation_level

    context.settings.authority.check(role, event, data, ladder, standing)


def _before_previous(at: datetime | None, now: datetime, previous: datetime) -> str:
    """Why an event cannot be recorded: it would fall before the case's previous event."""
    if at is not None:
        return f"at {at.isoformat()} lies before the case's previous event ({previous.isoformat()})"
    return (
        f"the case's previous event is recorded at {previous.isoformat()}, after this "
        f"host's clock ({now.isoformat()}); an event is recorded when it happens and never "
        "moved: check this host's clock, or give the time it happened (`at`)"
    )


def _known_event(definition: MachineDefinition, case_id: str, event: str) -> None:
    """Refuse an event the machine does not have, naming the nearest one it does."""
    known = (*definition.events, *definition.agent_events, *HAND_EVENTS, ATTACH_EVENT)
    if event not in known and event not in SYSTEM_EVENTS:
        import difflib

        near = difflib.get_close_matches(event, known, n=1, cutoff=0.6)
        raise UnknownEvent(case_id, event, definition.name, known, near[0] if near else None)


def _escalated_by_hand(
    context: Context, rules: CaseRules, tx: Tx, happened: list[Any], now: datetime
) -> None:
    """Queue the mail of each ``escalate_now`` among ``happened``, in its transaction:
    the level's recipients hear of it as of a timed escalation."""
    policy = None
    for case, event in happened:
        if event["event"] != MANUAL_ESCALATION:
            continue
        policy = policy or rules.policy(case.sla_policy)
        if policy is not None:
            row = manual_escalation_row(policy, case, case.escalation_level, event["seq"], now)
            context.store.outbox.queue(tx, [row])
