"""The tables: one row per case (a cache of its folded history) and the event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from casework.storage.timestamps import UTCDateTime

_ROW_ID = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit row id; SQLite's ``INTEGER PRIMARY KEY`` (its rowid) is 64-bit already."""

metadata = SQLModel.metadata


class CaseRow(SQLModel, table=True):
    """A case: its fixed columns and the fold of its events (state, version, owner...)."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_state", "state"),
        Index("ix_cases_owner", "owner"),
        Index("ix_cases_received_at", "received_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    machine: str = Field(max_length=64)
    machine_version: int
    state: str = Field(max_length=64)
    version: int
    owner: str = Field(max_length=200)
    branch: str | None = Field(default=None, max_length=200)
    channel: str = Field(max_length=64)
    category: str = Field(max_length=64)
    priority: str = Field(max_length=32)
    customer: str = Field(max_length=200)
    contact: str | None = Field(default=None, max_length=400)
    summary: str = Field(max_length=4000)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_event_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    escalation_level: int = 0
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    head_hash: str = Field(max_length=64)
    sla_policy: str | None = Field(default=None, max_length=16)
    sla: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    event_format: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class EventRow(SQLModel, table=True):
    """One thing that happened to a case. Rows are only ever inserted."""

    __tablename__ = "events"

    case_id: str = Field(primary_key=True, foreign_key="cases.id", max_length=40)
    seq: int = Field(primary_key=True)
    event: str = Field(max_length=64)
    from_state: str | None = Field(default=None, max_length=64)
    to_state: str = Field(max_length=64)
    actor: str = Field(max_length=200)
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class PolicyRow(SQLModel, table=True):
    """An SLA policy document, stored under its version when a case first uses it."""

    __tablename__ = "sla_policies"

    version: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=100)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    stored_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class DeadlineRow(SQLModel, table=True):
    """A durable timer: the next warning or ladder level of one clock cycle of a case."""

    __tablename__ = "deadlines"
    __table_args__ = (
        UniqueConstraint("case_id", "clock", "cycle", "level", name="uq_deadlines_key"),
        Index("ix_deadlines_status_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="cases.id", max_length=40, index=True)
    clock: str = Field(max_length=64)
    cycle: int
    level: int
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(max_length=16)
    fired_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class OutboxRow(SQLModel, table=True):
    """A mail or webhook delivery to send, written in the transaction of its event.

    A mail tells of a warning or escalation (``deadline_id``); a webhook delivery
    (``kind`` ``webhook``) of any event, its subscription's id in ``body``.

    ``status`` is ``pending`` (due at ``next_attempt_at``), ``held`` (quiet hours until
    ``held_until``), ``sending`` (claimed under ``lease_token`` until
    ``next_attempt_at``), ``sent`` or ``dead`` (a dead letter, with the server's answer
    in ``last_error``).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_ROW_ID)
    """A ``bigint`` on PostgreSQL (as migrated), so a 64-bit id compares as one."""
    dedupe_key: str = Field(max_length=200, unique=True)
    case_id: str | None = Field(default=None, foreign_key="cases.id", max_length=40)
    """The case the mail speaks of; none for a report (``[reports.daily]``)."""
    deadline_id: int | None = Field(default=None, foreign_key="deadlines.id")
    kind: str = Field(max_length=16)
    level: int
    recipients: list[str] = Field(sa_column=Column(JSON, nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    lease_token: str | None = Field(default=None, max_length=32)
    held_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    message_id: str | None = Field(default=None, max_length=250)


class MetaRow(SQLModel, table=True):
    """A fact about the database itself, such as its random ``database_id``."""

    __tablename__ = "casework_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=400)


class TokenRow(SQLModel, table=True):
    """A bearer token of the HTTP API: who it speaks for, in which role, for which branch.

    Only a SHA-256 hash of the token is kept; the token itself is shown once.
    """

    __tablename__ = "api_tokens"

    id: str = Field(primary_key=True, max_length=16)
    secret_hash: str = Field(max_length=64, unique=True)
    actor: str = Field(max_length=100)
    role: str = Field(max_length=16)
    branch: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class IdempotencyRow(SQLModel, table=True):
    """The first answer to a ``POST`` with an ``Idempotency-Key``, kept to answer a retry."""

    __tablename__ = "idempotency_keys"

    token_id: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    status: int
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    location: str | None = Field(default=None, max_length=400)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class WebhookRow(SQLModel, table=True):
    """A webhook subscription: where to ``POST`` which events, signed with its secret.

    The secret is kept as given (signing needs it); ``removed_at`` ends the subscription
    while its deliveries stay readable.
    """

    __tablename__ = "webhooks"

    id: str = Field(primary_key=True, max_length=16)
    url: str = Field(max_length=2000)
    events: list[str] = Field(sa_column=Column(JSON, nullable=False))
    secret: str = Field(max_length=100)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    removed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    branch: str | None = Field(default=None, max_length=200)


class HeartbeatRow(SQLModel, table=True):
    """The last sign of life of a worker process, which ``/readyz`` reads."""

    __tablename__ = "worker_heartbeats"

    worker: str = Field(primary_key=True, max_length=100)
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    beat_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class SessionRow(SQLModel, table=True):
    """A browser signed in to the console: the hash of its cookie, the token it speaks
    for, the CSRF token of its forms, and when it ends."""

    __tablename__ = "console_sessions"

    secret_hash: str = Field(primary_key=True, max_length=64)
    token_id: str = Field(max_length=16)
    csrf: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PartnerRow(SQLModel, table=True):
    """An installer, repairer or manufacturer the business works with, by the id events
    name it with."""

    __tablename__ = "partners"

    id: str = Field(primary_key=True, max_length=100)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    branch: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class JobRow(SQLModel, table=True):
    """Dispatched jobs (installations and repairs) of one kind, branch, category and
    partner on one day: what complaints per 10,000 jobs are counted against."""

    __tablename__ = "jobs"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    branch: str = Field(max_length=200)
    category: str | None = Field(default=None, max_length=64)
    partner: str | None = Field(default=None, max_length=100)
    done_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    jobs: int
    source: str = Field(max_length=200)


class AttachmentRow(SQLModel, table=True):
    """A file attached to cases as evidence, kept once by its SHA-256 digest."""

    __tablename__ = "attachments"

    digest: str = Field(primary_key=True, max_length=64)
    size: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class SubjectRow(SQLModel, table=True):
    """A customer as the keeper of personal data: the secret that keys the commitments
    of their values in the history. Deleted, with the values, when they are erased."""

    __tablename__ = "subjects"

    id: str = Field(primary_key=True, max_length=16)
    secret: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PersonalRow(SQLModel, table=True):
    """A personal value of a case (``customer``, ``contact``, ``attributes.address``):
    its history holds only a keyed commitment to it."""

    __tablename__ = "personal_data"
    __table_args__ = (
        Index("ix_personal_subject", "subject_id"),
        Index("ix_personal_field_value", "field", "value"),
    )

    case_id: str = Field(primary_key=True, foreign_key="cases.id", max_length=40)
    field: str = Field(primary_key=True, max_length=80)
    subject_id: str = Field(foreign_key="subjects.id", max_length=16)
    value: str = Field(max_length=400)


cases_table = CaseRow.__table__  # type: ignore[attr-defined]
events_table = EventRow.__table__  # type: ignore[attr-defined]
policies_table = PolicyRow.__table__  # type: ignore[attr-defined]
deadlines_table = DeadlineRow.__table__  # type: ignore[attr-defined]
outbox_table = OutboxRow.__table__  # type: ignore[attr-defined]
meta_table = MetaRow.__table__  # type: ignore[attr-defined]
tokens_table = TokenRow.__table__  # type: ignore[attr-defined]
idempotency_table = IdempotencyRow.__table__  # type: ignore[attr-defined]
webhooks_table = WebhookRow.__table__  # type: ignore[attr-defined]
heartbeats_table = HeartbeatRow.__table__  # type: ignore[attr-defined]
sessions_table = SessionRow.__table__  # type: ignore[attr-defined]
partners_table = PartnerRow.__table__  # type: ignore[attr-defined]
jobs_table = JobRow.__table__  # type: ignore[attr-defined]
attachments_table = AttachmentRow.__table__  # type: ignore[attr-defined]
subjects_table = SubjectRow.__table__  # type: ignore[attr-defined]
personal_table = PersonalRow.__table__  # type: ignore[attr-defined]
