"""Opening a case: its intake checked, its first event and its row built."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from casework.machines import OPEN_EVENT, CaseRules, MachineDefinition, opened
from casework.machines.clocks import Planned
from casework.storage import GENESIS_HASH
from casework.storage.chain import EVENT_FORMAT, PERSONAL_FORMAT
from casework.workflow.cases import validation
from casework.workflow.cases.remedies import classified
from casework.workflow.cases.transitions import event_row, plan_of, sla_json
from casework.workflow.config import Settings
from casework.workflow.errors import InvalidInput
from casework.workflow.privacy.commitments import committed, personal_values


def new_case_id() -> str:
    """A fresh case id: 16 random hex digits."""
    return secrets.token_hex(8)


def opening_data(
    settings: Settings,
    definition: MachineDefinition,
    *,
    customer: str,
    summary: str,
    channel: str | None,
    category: str | None,
    actor: str,
    contact: str | None,
    branch: str | None,
    priority: str,
    attributes: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The opening event's data, every value checked: what the case was opened with."""
    intake = {"channel": channel, "category": category}
    missing = [name for name in definition.intake if intake[name] is None]
    if missing:
        raise InvalidInput(
            f"machine {definition.name} needs {' and '.join(missing)} to open a case",
            field=missing[0],
        )
    s = settings
    return {
        "customer": validation.text(customer, "customer", max_chars=200),
        "channel": None if channel is None else validation.choice(channel, "channel", s.channels),
        "category": None
        if category is None
        else validation.choice(category, "category", s.categories),
        "summary": validation.text(summary, "summary", max_chars=s.max_text_chars, multiline=True),
        "contact": None if contact is None else validation.text(contact, "contact", max_chars=400),
        "branch": None if branch is None else validation.text(branch, "branch", max_chars=200),
        "priority": validation.choice(priority, "priority", s.priorities),
        "owner": validation.agent_id(actor, "actor"),
        "attributes": classified(
            s.warranty, validation.attributes(attributes, definition.attributes, definition.name)
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
