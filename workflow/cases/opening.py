"""Opening a case: its intake checked, its first event and its row built and stored, and
a repeat of an earlier case linked to it."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework.machines import OPEN_EVENT, CaseRules, MachineDefinition, opened
from casework.machines.clocks import Planned
from casework.machines.definition import MANUAL_ESCALATION
from casework.storage import GENESIS_HASH, CaseRecord
from casework.storage.chain import EVENT_FORMAT, PERSONAL_FORMAT
from casework.storage.database import HostConnection
from casework.storage.errors import WriteConflict
from casework.workflow import validation
from casework.workflow.cases.firing import record
from casework.workflow.cases.intake import FIELDS, checked, checked_value
from casework.workflow.cases.relations import repeat_of
from casework.workflow.cases.remedies import classified, sold_by
from casework.workflow.clock import aware
from casework.workflow.config import Settings
from casework.workflow.errors import InvalidInput
from casework.workflow.notify.queue import queue_notifications
from casework.workflow.privacy.commitments import committed, new_subject, personal_values
from casework.workflow.transitions import (
    SYSTEM_ACTOR,
    event_row,
    plan_of,
    profile_of,
    sla_json,
    sync_deadlines,
    with_deadlines,
)
from casework.workflow.webhooks.queue import queue_webhooks

if TYPE_CHECKING:
    from casework.workflow.context import Context


def new_case_id() -> str:
    """A fresh case id: 16 random hex digits."""
    return secrets.token_hex(8)


def opening_data(
    settings: Settings,
    definition: MachineDefinition,
    *,
    actor: str,
    **values: Any,
) -> dict[str, Any]:
    """The opening event's data, every value checked: what the case was opened with
    (``values`` by the names of :data:`~casework.workflow.cases.intake.INTAKE`), its
    first receiver ``actor`` the owner."""
    return {
        **checked(settings, definition, values),
        "owner": validation.agent_id(actor, "actor"),
        "attributes": classified(
            settings.warranty,
            validation.attributes(values.get("attributes"), definition.attributes, definition.name),
        ),
        "machine": [definition.name, definition.version],
    }


def opened_case(
    case_id: str,
    rules: CaseRules,
    opening: Mapping[str, Any],
    actor: str,
    received: datetime,
    now: datetime,
    subject: tuple[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[tuple[str, int, int], Planned]]:
    """The new case's row, its opening event and the deadlines it starts with. With
    the customer's ``subject`` (id, secret) the history is of format 2: the event
    holds commitments to the personal values, the row the values themselves."""
    definition = rules.definition
    folded = opened(rules, opening["owner"], received, opening["policy"])
    data, v = opening, EVENT_FORMAT
    if subject is not None:
        values = personal_values(opening, definition)
        data, v = committed(opening, values, *subject, case_id), PERSONAL_FORMAT
    event = event_row(
        case_id, 1, OPEN_EVENT, None, folded.state, actor, received, now, data, GENESIS_HASH, v
    )
    plan = plan_of(rules, folded)
    case = {
        "id": case_id,
        "machine": definition.name,
        "machine_version": definition.version,
        "state": folded.state,
        "version": 1,
        "escalation_level": 0,
        "facts": {},
        "opened_at": now,
        "received_at": received,
        "last_event_at": received,
        "head_hash": event["hash"],
        **{k: v for k, v in opening.items() if k not in ("attributes", "policy", "machine")},
        "attributes": opening["attributes"],
        "sla_policy": opening["policy"],
        "sla": sla_json(rules, folded, plan),
        "event_format": v,
    }
    return case, event, plan


def open_case(
    context: Context,
    *,
    customer: str,
    summary: str,
    channel: str | None = None,
    category: str | None = None,
    actor: str = "intake",
    contact: str | None = None,
    branch: str | None = None,
    priority: str = "normal",
    received_at: datetime | None = None,
    machine: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    case_id: str | None = None,
    within: str | None = None,
    connection: HostConnection | None = None,
) -> CaseRecord:
    """Check a case as a person or a host gives it, then store it
    (:meth:`~casework.workflow.engine.Engine.open_case` says what each argument does)."""
    context.joinable(connection)
    s = context.settings
    name = checked_value(FIELDS["machine"], machine, s)
    definition = context.definition(s.default_machine if name is None else name, None)
    opening = opening_data(
        s, definition, customer=customer, summary=summary, channel=channel,
        category=category, actor=actor, contact=contact, branch=branch,
        priority=priority, attributes=attributes,
    )  # fmt: skip
    now = context.clock.now()
    context.server_clock.check()
    received = now if received_at is None else aware(received_at, "received_at")
    context.not_in_future(received, now, "received_at")
    sold_by(s.warranty, opening["attributes"], received)
    case_id = new_case_id() if case_id is None else validation.new_case_id(case_id)
    return store_case(
        context, definition, opening, actor=actor, received=received, now=now,
        case_id=case_id, within=within, connection=connection,
    )  # fmt: skip


def store_case(
    context: Context,
    definition: MachineDefinition,
    opening: dict[str, Any],
    *,
    actor: str,
    received: datetime,
    now: datetime,
    case_id: str,
    within: str | None,
    connection: HostConnection | None,
) -> CaseRecord:
    """The transaction of :func:`open_case`, for checked input: store the case
    ``opening`` describes, then link it to the earlier case it repeats, if any (among
    branch ``within``'s cases)."""
    store, settings = context.store, context.settings
    policy = context.policies.current_for(definition.name)
    opening["policy"] = None if policy is None else policy.version
    rules = CaseRules(definition, context.policies.known(), profile_of(opening))
    try:
        with store.transaction(connection) as tx:
            # the customer's secret: theirs if they have cases, else a new one
            subject = store.personal.subject_for(tx, opening["customer"], new_subject(), now)
            case, event, plan = opened_case(case_id, rules, opening, actor, received, now, subject)
            if policy is not None:
                store.deadlines.store_policy(tx, policy.version, policy.name, policy.document, now)
            store.cases.insert(tx, case, event)
            store.personal.put(tx, case_id, subject[0], personal_values(opening, definition))
            moved = sync_deadlines(store, tx, case_id, {}, plan)
            opened = [(CaseRecord(**case), event)]
            queue_webhooks(store, tx, opened, now, settings.organisation)
            queue_notifications(store, tx, opened, now, settings.notify)
    except WriteConflict:
        raise InvalidInput(f"case id {case_id!r} is taken", field="case_id") from None
    context.planned(moved, connection)
    context.log.info(
        "case_opened",
        case_id=case_id,
        machine=definition.name,
        channel=opening["channel"],
        category=opening["category"],
    )
    stored = with_deadlines(CaseRecord(**case))
    relations = definition.relations
    rule = None if relations is None else relations.repeat
    earlier = None if rule is None else repeat_of(context, rule, stored, within)
    if relations is None or rule is None or earlier is None:
        return stored
    data = {"case": earlier, "kind": "repeat", "repeat_of": earlier}
    link = relations.link
    linked = record(context, case_id, link, actor=SYSTEM_ACTOR, data=data, connection=connection)
    escalates = rule.category is not None and opening["category"] == rule.category
    if not (settings.repeat_escalates and escalates):
        return linked
    return record(
        context, case_id, MANUAL_ESCALATION, actor=SYSTEM_ACTOR,
        data={"reason": rule.reason(earlier)}, connection=connection,
    )  # fmt: skip
