"""The memory store's tables: every table a dict (or a list) of records, and the box that
holds the committed rows and the one writer's lock."""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from casework.storage.chain import parse_json
from casework.storage.errors import WriteConflict
from casework.storage.port import DeadlineKey
from casework.storage.records import (
    CaseRecord,
    EventRecord,
    Heartbeat,
    OutboxMail,
    PartnerRecord,
    Remembered,
    TokenRecord,
    WebhookRecord,
)
from casework.storage.timestamps import as_utc

CASE_TIMES = ("received_at", "opened_at", "last_event_at")
EVENT_TIMES = ("occurred_at", "recorded_at")


@dataclass
class Deadline:
    """A deadline row: pending, cancelled or fired."""

    id: int
    case_id: str
    key: DeadlineKey
    due_at: datetime
    status: str = "pending"
    fired_at: datetime | None = None


@dataclass
class Mail:
    """An outbox row (mail, webhook delivery or notification) and its lease."""

    id: int
    dedupe_key: str
    case_id: str | None
    deadline_id: int | None
    kind: str
    level: int
    recipients: list[str]
    body: Any
    next_attempt_at: datetime
    created_at: datetime
    status: str = "pending"
    attempts: int = 0
    last_error: str | None = None
    lease_token: str | None = None
    held_until: datetime | None = None
    sent_at: datetime | None = None
    message_id: str | None = None

    def record(self) -> OutboxMail:
        """The row as the port reads it."""
        return OutboxMail(
            self.id, self.dedupe_key, self.case_id, self.kind, self.level,
            tuple(self.recipients), copy.deepcopy(self.body), self.status, self.attempts,
            self.next_attempt_at, self.last_error, self.created_at, self.held_until,
            self.sent_at, self.message_id,
        )  # fmt: skip


@dataclass
class Rows:
    """Every table of the store. A transaction's cursor is a copy of this."""

    cases: dict[str, CaseRecord] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Each case's event rows by seq, data as its JSON text (as stored)."""
    policies: dict[str, Any] = field(default_factory=dict)
    deadlines: dict[int, Deadline] = field(default_factory=dict)
    outbox: dict[int, Mail] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, tuple[TokenRecord, str]] = field(default_factory=dict)
    answers: dict[tuple[str, str], Remembered] = field(default_factory=dict)
    sessions: dict[str, tuple[str, str, datetime, datetime]] = field(default_factory=dict)
    webhooks: dict[str, WebhookRecord] = field(default_factory=dict)
    beats: dict[str, Heartbeat] = field(default_factory=dict)
    partners: dict[str, PartnerRecord] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    attachments: dict[str, bytes] = field(default_factory=dict)
    subjects: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    personal: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """(case id, field) -> (subject id, value)."""
    last_id: int = 0
    """The last row id given (deadlines and outbox rows)."""

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def deadline(self, case_id: str, key: DeadlineKey) -> Deadline | None:
        return next(
            (d for d in self.deadlines.values() if (d.case_id, d.key) == (case_id, key)), None
        )

    def case_must_exist(self, case_id: str, what: str) -> None:
        if case_id not in self.cases:
            raise WriteConflict(f"{what} names case {case_id!r}, which does not exist")


class Box:
    """The committed rows and the one writer's lock, shared by a store and its twins."""

    def __init__(self) -> None:
        self.rows = Rows()
        self.rows.meta["database_id"] = uuid.uuid4().hex
        self.writer = threading.Lock()
        self.writing: int | None = None
        """The thread whose write transaction is open, if any."""


def event_records(rows: Rows, case_id: str) -> list[EventRecord]:
    """A case's events as the port reads them, data decoded."""
    return [
        EventRecord(**{**e, "data": parse_json(e["data"])}) for e in rows.events.get(case_id, [])
    ]


def utc_times(record: Any) -> Any:
    """A record with its times checked aware and put in UTC."""
    times = {
        name: as_utc(value, name)
        for name, value in vars(record).items()
        if isinstance(value, datetime)
    }
    return replace(record, **times)
