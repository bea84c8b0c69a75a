"""The tables: one row per case (a cache of its folded history) and the event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from storage.timestamps import UTCDateTime

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


cases_table = CaseRow.__table__  # type: ignore[attr-defined]
events_table = EventRow.__table__  # type: ignore[attr-defined]
