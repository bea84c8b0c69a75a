"""Immutable records read from storage: what the API returns for cases and events."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from casework.storage.timestamps import iso


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
        return cls(**{name: getattr(row, name) for name in EVENT_FIELDS})

    def to_json(self) -> dict[str, Any]:
        """The event's JSON shape (the CLI contract)."""
        return _jsonable(self)


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
    channel: str | None
    category: str | None
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
    sla_policy: str | None
    sla: Mapping[str, Any]
    event_format: int = 1
    """The canonical event format of the case's history (:data:`casework.storage.chain`): 2 keeps
    personal data out of the hashed events, 1 is read as it is."""
    deadlines: tuple[Mapping[str, Any], ...] = field(default=())

    @classmethod
    def from_row(cls, row: Any) -> CaseRecord:
        """Build from a row of the ``cases`` table."""
        values = {name: getattr(row, name) for name in CASE_FIELDS}
        for name in UNDECLARED_AS_EMPTY:
            values[name] = values[name] or None
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The case's JSON shape (the CLI contract)."""
        return _jsonable(self)


def _jsonable(record: EventRecord | CaseRecord) -> dict[str, Any]:
    """A record's fields as JSON values: times in ISO 8601, mappings as dicts."""
    result: dict[str, Any] = {}
    for name in _FIELD_NAMES[type(record)]:
        value = getattr(record, name)
        if type(value) in _AS_THEY_ARE:  # most values: no abstract class asked about them
            pass
        elif isinstance(value, datetime):
            value = iso(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, tuple):
            value = [dict(v) for v in value]
        result[name] = value
    return result


_AS_THEY_ARE = frozenset({str, int, float, bool, type(None)})
"""Types of values a record's JSON holds unchanged."""


UNDECLARED_AS_EMPTY = ("channel", "category")
"""Intake columns stored as empty text where the case's machine does not declare them
(the columns are NOT NULL); read back as ``None``."""
EVENT_FIELDS = tuple(f.name for f in fields(EventRecord))
"""The columns of the ``events`` table, in record order."""
CASE_FIELDS = tuple(f.name for f in fields(CaseRecord) if f.name != "deadlines")
"""The columns of the ``cases`` table, in record order."""
_FIELD_NAMES = {kind: tuple(f.name for f in fields(kind)) for kind in (EventRecord, CaseRecord)}
"""Each record's fields, in order: what its JSON holds."""


STATUSES = ("pending", "held", "sending", "sent", "dead")
"""Every status an outbox mail can have."""

DUE_STATUSES = ("pending", "held", "sending")
"""Statuses a claim takes once ``next_attempt_at`` has passed."""


@dataclass(frozen=True)
class OutboxMail:
    """One outbox row as read."""

    id: int
    dedupe_key: str
    case_id: str | None
    """``None`` for a mail about no one case (the daily report)."""
    kind: str
    level: int
    recipients: tuple[str, ...]
    body: Mapping[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    held_until: datetime | None
    sent_at: datetime | None
    message_id: str | None

    @classmethod
    def from_row(cls, row: Any) -> OutboxMail:
        """Build from a row of the ``outbox`` table."""
        values = row._mapping
        return cls(
            **{name: values[name] for name in _FIELDS},
            recipients=tuple(values["recipients"]),
        )

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601 strings)."""
        out: dict[str, Any] = {}
        for name in (*_FIELDS, "recipients"):
            value = getattr(self, name)
            out[name] = iso(value) if isinstance(value, datetime) else value
        out["recipients"] = list(self.recipients)
        return out


_FIELDS = (
    "id",
    "dedupe_key",
    "case_id",
    "kind",
    "level",
    "body",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "held_until",
    "sent_at",
    "message_id",
)


@dataclass(frozen=True)
class DueDeadline:
    """A claimed deadline: its row id and key, and when it fell due."""

    id: int
    case_id: str
    clock: str
    cycle: int
    level: int
    due_at: datetime


@dataclass(frozen=True)
class Streams:
    """The case rows and the event rows of one snapshot, both ordered by case id."""

    cases: Iterator[tuple[Any, ...]]
    events: Iterator[tuple[Any, ...]]
    deadlines: Iterator[tuple[Any, ...]]
    """Pending deadlines: (case_id, clock, cycle, level, due_at text), by case id."""


@dataclass(frozen=True)
class TokenRecord:
    """A bearer token as stored (its secret is not: only a hash of it)."""

    id: str
    actor: str
    role: str
    branch: str | None
    created_at: datetime
    revoked_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> TokenRecord:
        """Build from a row of the ``api_tokens`` table."""
        return cls(row.id, row.actor, row.role, row.branch, row.created_at, row.revoked_at)

    def as_row(self) -> dict[str, Any]:
        """The columns of the ``api_tokens`` table but the hash."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601 strings)."""
        return {k: iso(v) if isinstance(v, datetime) else v for k, v in self.as_row().items()}


@dataclass(frozen=True)
class Remembered:
    """The first answer to a request made with an idempotency key."""

    request_hash: str
    status: int
    body: Any
    location: str | None
    created_at: datetime


WEBHOOK_KIND = "webhook"
"""The outbox ``kind`` of a webhook delivery (every other kind is a mail)."""


@dataclass(frozen=True)
class WebhookRecord:
    """A webhook subscription as stored."""

    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_at: datetime
    removed_at: datetime | None = None
    branch: str | None = None
    """Only this branch's cases are delivered (none: every branch's)."""

    @classmethod
    def from_row(cls, row: Any) -> WebhookRecord:
        """Build from a row of the ``webhooks`` table."""
        return cls(row.id, row.url, tuple(row.events), row.secret, row.created_at,
                   row.removed_at, row.branch)  # fmt: skip

    def wants(self, event: str) -> bool:
        """Whether the subscription asked for ``event``."""
        return "*" in self.events or event in self.events

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields, without the secret."""
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "created_at": iso(self.created_at),
            "removed_at": None if self.removed_at is None else iso(self.removed_at),
            "branch": self.branch,
        }


@dataclass(frozen=True)
class Heartbeat:
    """A worker's last sign of life."""

    worker: str
    started_at: datetime
    beat_at: datetime


@dataclass(frozen=True)
class CaseQuery:
    """Which cases a list wants: each given field must match.

    ``states``/``not_states`` keep the cases in (or not in) those states; ``received_from``
    (inclusive) and ``received_until`` (exclusive) bound the received time. ``after``
    continues a page in received order after the case received at ``after[0]`` with id
    ``after[1]``; ``after_due`` one in next-deadline order after (next due or ``None``,
    received, id).
    """

    state: str | None = None
    branch: str | None = None
    owner: str | None = None
    customer: str | None = None
    channel: str | None = None
    category: str | None = None
    priority: str | None = None
    after: tuple[datetime, str] | None = None
    states: tuple[str, ...] | None = None
    not_states: tuple[str, ...] | None = None
    received_from: datetime | None = None
    received_until: datetime | None = None
    after_due: tuple[datetime | None, datetime, str] | None = None
    branches: tuple[str, ...] | None = None
    """Only cases whose branch is one of these (a branch and its stores)."""


@dataclass(frozen=True)
class Figures:
    """What ``/metrics`` reads from the database at one moment."""

    deadlines_pending: int
    deadlines_overdue: int
    outbox: Mapping[tuple[str, str], int]
    """Outbox rows by (kind, status)."""
    oldest_pending_mail: datetime | None
    fire_lag_buckets: Sequence[tuple[float, int]]
    """Fired deadlines whose lag (due to fired) was at most each bound, in seconds."""
    fire_lag_count: int
    fire_lag_sum: float


@dataclass(frozen=True)
class PartnerRecord:
    """An installer, repairer or manufacturer, by the id events name it with."""

    id: str
    name: str
    kind: str
    branch: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "branch": self.branch,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class JobCount:
    """Dispatched jobs of one kind, branch, category and partner, summed."""

    kind: str
    branch: str
    category: str | None
    partner: str | None
    jobs: int


@dataclass(frozen=True)
class SessionRecord:
    """A console session as read: its token, the CSRF token of its forms, its end."""

    token: TokenRecord
    csrf: str
    expires_at: datetime
