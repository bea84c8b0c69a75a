"""Reading and writing cases and events: every query the engine runs, in one place.

All functions take an open connection; the caller owns the transaction. No function
here updates or deletes an event row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, func, insert, select, update

from storage.records import CaseRecord, EventRecord
from storage.tables import cases_table as cases
from storage.tables import deadlines_table, policies_table
from storage.tables import events_table as events
from storage.timestamps import iso

_insert_event = insert(events)
_insert_case = insert(cases)
_select_case = select(cases).where(cases.c.id == bindparam("case_id"))
_select_case_for_update = _select_case.with_for_update()
_advance_case = (
    update(cases)
    .where(and_(cases.c.id == bindparam("b_id"), cases.c.version == bindparam("b_expected")))
    .values(
        state=bindparam("b_state"),
        version=bindparam("b_version"),
        owner=bindparam("b_owner"),
        facts=bindparam("b_facts"),
        escalation_level=bindparam("b_escalation_level"),
        last_event_at=bindparam("b_last_event_at"),
        head_hash=bindparam("b_head_hash"),
    )
)


def insert_case(conn: Connection, case: Mapping[str, Any], first_event: Mapping[str, Any]) -> None:
    """Store a new case row and its opening event."""
    conn.execute(_insert_case, [dict(case)])
    conn.execute(_insert_event, [dict(first_event)])


def load_case_row(conn: Connection, case_id: str, *, lock: bool = False) -> Row[Any] | None:
    """The case row, or ``None``; ``lock`` takes a row lock where the database has them."""
    query = _select_case_for_update if lock and conn.dialect.name != "sqlite" else _select_case
    return conn.execute(query, {"case_id": case_id}).first()


def load_case(conn: Connection, case_id: str) -> CaseRecord | None:
    """The case record, or ``None``."""
    row = load_case_row(conn, case_id)
    return None if row is None else CaseRecord.from_row(row)


def append_event(
    conn: Connection, event: Mapping[str, Any], case_update: Mapping[str, Any], expected: int
) -> bool:
    """Insert the event and move the case row on from version ``expected``.

    Returns ``False`` (having written nothing that the caller may keep) when the
    case row is no longer at ``expected``: the caller must roll back.
    """
    conn.execute(_insert_event, [dict(event)])
    params = {f"b_{key}": value for key, value in case_update.items()}
    params["b_id"] = event["case_id"]
    params["b_expected"] = expected
    result = conn.execute(_advance_case, params)
    return result.rowcount == 1


def list_cases(
    conn: Connection, *, state: str | None = None, limit: int | None = None
) -> list[CaseRecord]:
    """Cases in the order they were received, optionally of one state."""
    query = select(cases).order_by(cases.c.received_at, cases.c.id)
    if state is not None:
        query = query.where(cases.c.state == state)
    if limit is not None:
        query = query.limit(limit)
    return [CaseRecord.from_row(row) for row in conn.execute(query)]


def case_events(conn: Connection, case_id: str) -> list[EventRecord]:
    """A case's events, oldest first."""
    query = select(events).where(events.c.case_id == case_id).order_by(events.c.seq)
    return [EventRecord.from_row(row) for row in conn.execute(query)]


def count_events(conn: Connection) -> int:
    """How many events are stored."""
    return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def stored_policies(conn: Connection) -> dict[str, Any]:
    """Every stored SLA policy document by version."""
    rows = conn.execute(select(policies_table.c.version, policies_table.c.document))
    return {row.version: row.document for row in rows}


def case_deadlines(conn: Connection, case_id: str) -> tuple[dict[str, Any], ...]:
    """The case's pending deadlines, soonest first."""
    query = (
        select(deadlines_table)
        .where(deadlines_table.c.case_id == case_id)
        .where(deadlines_table.c.status == "pending")
    )
    rows = [deadline_json(r.clock, r.cycle, r.level, r.due_at) for r in conn.execute(query)]
    return tuple(sorted(rows, key=lambda d: (d["due_at"], d["clock"], d["level"])))


def deadline_json(clock: str, cycle: int, level: int, due_at: datetime) -> dict[str, Any]:
    """A pending deadline as the case's JSON shows it."""
    kind = "warning" if level == 0 else "breach" if level == 1 else f"escalation level {level}"
    return {"clock": clock, "cycle": cycle, "level": level, "kind": kind, "due_at": iso(due_at)}
