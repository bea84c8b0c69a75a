"""Immutable records read from storage: what the API returns for cases and events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.timestamps import iso


@dataclass(frozen=True)
class EventRecord:
    """One event of a case's history, with its place in the hash chain."""

    case_id: str
    seq: int
    event: str
    from_state: str | None
    to_state: str
    actor: str
    occurred_at: datetime
    recorded_at: datetime
    data: Mapping[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: Any) -> EventRecord:
        """Build from a row of the ``events`` table."""
        return cls(
            case_id=row.case_id,
            seq=row.seq,
            event=row.event,
            from_state=row.from_state,
            to_state=row.to_state,
            actor=row.actor,
            occurred_at=row.occurred_at,
            recorded_at=row.recorded_at,
            data=dict(row.data),
            prev_hash=row.prev_hash,
            hash=row.hash,
        )

    def to_json(self) -> dict[str, Any]:
        """The event's JSON shape (the CLI contract)."""
        return {
            "case_id": self.case_id,
            "seq": self.seq,
            "event": self.event,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "actor": self.actor,
            "occurred_at": iso(self.occurred_at),
            "recorded_at": iso(self.recorded_at),
            "data": dict(self.data),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class CaseRecord:
    """A case as stored: its fixed columns and the fold of its history."""

    id: str
    machine: str
    machine_version: int
    state: str
    version: int
    owner: str
    branch: str | None
    channel: str
    category: str
    priority: str
    customer: str
    contact: str | None
    summary: str
    received_at: datetime
    opened_at: datetime
    last_event_at: datetime
    escalation_level: int
    attributes: Mapping[str, Any]
    facts: Mapping[str, Any]
    head_hash: str
    deadlines: tuple[Mapping[str, Any], ...] = field(default=())

    @classmethod
    def from_row(cls, row: Any) -> CaseRecord:
        """Build from a row of the ``cases`` table."""
        return cls(
            id=row.id,
            machine=row.machine,
            machine_version=row.machine_version,
            state=row.state,
            version=row.version,
            owner=row.owner,
            branch=row.branch,
            channel=row.channel,
            category=row.category,
            priority=row.priority,
            customer=row.customer,
            contact=row.contact,
            summary=row.summary,
            received_at=row.received_at,
            opened_at=row.opened_at,
            last_event_at=row.last_event_at,
            escalation_level=row.escalation_level,
            attributes=dict(row.attributes),
            facts=dict(row.facts),
            head_hash=row.head_hash,
        )

    def to_json(self) -> dict[str, Any]:
        """The case's JSON shape (the CLI contract)."""
        return {
            "id": self.id,
            "machine": self.machine,
            "machine_version": self.machine_version,
            "state": self.state,
            "version": self.version,
            "owner": self.owner,
            "branch": self.branch,
            "channel": self.channel,
            "category": self.category,
            "priority": self.priority,
            "customer": self.customer,
            "contact": self.contact,
            "summary": self.summary,
            "received_at": iso(self.received_at),
            "opened_at": iso(self.opened_at),
            "last_event_at": iso(self.last_event_at),
            "escalation_level": self.escalation_level,
            "attributes": dict(self.attributes),
            "facts": dict(self.facts),
            "head_hash": self.head_hash,
            "deadlines": [dict(d) for d in self.deadlines],
        }
