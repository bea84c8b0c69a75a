"""Reading cases, events, deadlines and policies through SQLAlchemy.

All functions take an open connection; the caller owns the transaction. Writes go
through :mod:`casework.storage.transition_sql` and :mod:`casework.storage.deadline_sql`; nothing
updates or deletes an event row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
    tuple_,
)

from casework.storage.chain import parse_json
from casework.storage.records import CaseQuery, CaseRecord, EventRecord
from casework.storage.tables import cases_table as cases
from casework.storage.tables import deadlines_table, policies_table
from casework.storage.tables import events_table as events
from casework.storage.timestamps import UTCDateTime

_select_case = select(cases).where(cases.c.id == bindparam("case_id"))


def load_case(conn: Connection, case_id: str) -> CaseRecord | None:
    """The case record, or ``None``."""
    row = conn.execute(_select_case, {"case_id": case_id}).first()
    return None if row is None else CaseRecord.from_row(row)


def load_cases(conn: Connection, case_ids: Sequence[str]) -> dict[str, CaseRecord]:
    """Several case records by id (those that exist)."""
    if not case_ids:
        return {}
    query = select(cases).where(cases.c.id.in_(list(case_ids)))
    return {row.id: CaseRecord.from_row(row) for row in conn.execute(query)}


FIELDS = ("state", "branch", "owner", "customer", "channel", "category", "priority")
"""The case columns a :class:`CaseQuery` matches by equality."""


def _matching(query: CaseQuery) -> list[ColumnElement[bool]]:
    """The conditions of ``query`` but its page position."""
    conditions: list[ColumnElement[bool]] = [
        cases.c[name] == getattr(query, name) for name in FIELDS if getattr(query, name) is not None
    ]
    if query.branches is not None:
        conditions.append(cases.c.branch.in_(list(query.branches)))
    if query.states is not None:
        conditions.append(cases.c.state.in_(list(query.states)))
    if query.not_states:
        conditions.append(cases.c.state.not_in(list(query.not_states)))
    if query.received_from is not None:
        conditions.append(cases.c.received_at >= query.received_from)
    if query.received_until is not None:
        conditions.append(cases.c.received_at < query.received_until)
    return conditions


def list_cases(
    conn: Connection, query: CaseQuery | None = None, *, limit: int | None = None
) -> list[CaseRecord]:
    """Cases in the order they were received (then by id) that match ``query``."""
    where = query or CaseQuery()
    statement = select(cases).where(*_matching(where)).order_by(cases.c.received_at, cases.c.id)
    if where.after is not None:
        received, case_id = where.after
        statement = statement.where(
            or_(
                cases.c.received_at > received,
                and_(cases.c.received_at == received, cases.c.id > case_id),
            )
        )
    if limit is not None:
        statement = statement.limit(limit)
    return [CaseRecord.from_row(row) for row in conn.execute(statement)]


def cases_by_due(
    conn: Connection, query: CaseQuery, limit: int
) -> list[tuple[CaseRecord, datetime | None]]:
    """Cases that match ``query``, the next pending deadline first (those without one
    last, then in received order), at most ``limit``, each with that deadline."""
    pending = deadlines_table
    next_due = (
        select(pending.c.case_id, func.min(pending.c.due_at).label("next_due"))
        .where(pending.c.status == "pending")
        .group_by(pending.c.case_id)
        .subquery()
    )
    due = next_due.c.next_due
    statement = (
        select(cases, due)
        .outerjoin(next_due, next_due.c.case_id == cases.c.id)
        .where(*_matching(query))
        .order_by(due.is_(None), due, cases.c.received_at, cases.c.id)
        .limit(limit)
    )
    if query.after_due is not None:
        last_due, received, case_id = query.after_due
        later = tuple_(cases.c.received_at, cases.c.id) > tuple_(
            literal(received, UTCDateTime()), literal(case_id)
        )
        if last_due is None:
            statement = statement.where(due.is_(None), later)
        else:
            at = literal(last_due, UTCDateTime())
            statement = statement.where(or_(due.is_(None), due > at, and_(due == at, later)))
    found = []
    for row in conn.execute(statement):
        value = row.next_due
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        found.append((CaseRecord.from_row(row), moment))
    return found


def count_cases(conn: Connection, query: CaseQuery) -> int:
    """How many cases match ``query`` (its page position aside)."""
    statement = select(func.count()).select_from(cases).where(*_matching(query))
    return int(conn.execute(statement).scalar_one())


def ids_starting(conn: Connection, prefix: str, limit: int, branch: str | None = None) -> list[str]:
    """Up to ``limit`` case ids that start with ``prefix`` (of ``branch``'s cases only, if
    given), in order."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(cases.c.id)
        .where(cases.c.id.like(escaped + "%", escape="\\"))
        .order_by(cases.c.id)
        .limit(limit)
    )
    if branch is not None:
        query = query.where(cases.c.branch == branch)
    return list(conn.execute(query).scalars())


def case_events(conn: Connection, case_id: str, upto: int | None = None) -> list[EventRecord]:
    """A case's events, oldest first; only those up to sequence number ``upto`` if given."""
    query = select(events).where(events.c.case_id == case_id).order_by(events.c.seq)
    if upto is not None:
        query = query.where(events.c.seq <= upto)
    return [EventRecord.from_row(row) for row in conn.execute(query)]


def events_of_cases(conn: Connection, case_ids: Sequence[str]) -> dict[str, list[EventRecord]]:
    """The events of several cases, each case's oldest first."""
    found: dict[str, list[EventRecord]] = {case_id: [] for case_id in case_ids}
    if case_ids:
        query = (
            select(events)
            .where(events.c.case_id.in_(list(found)))
            .order_by(events.c.case_id, events.c.seq)
        )
        for row in conn.execute(query):
            found[row.case_id].append(EventRecord.from_row(row))
    return found


def stored_policies(conn: Connection) -> dict[str, Any]:
    """Every stored SLA policy document by version (one that is not JSON as its text,
    for the caller to name as damaged)."""
    rows = conn.execute(select(policies_table.c.version, cast(policies_table.c.document, Text)))
    found: dict[str, Any] = {}
    for version, document in rows:
        try:
            found[version] = parse_json(document)
        except ValueError:
            found[version] = document
    return found


def next_due(conn: Connection) -> datetime | None:
    """When the earliest pending deadline falls due (``None`` if none is pending)."""
    query = select(deadlines_table.c.due_at).where(deadlines_table.c.status == "pending")
    value = conn.execute(query.order_by(deadlines_table.c.due_at).limit(1)).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


def pending_count(conn: Connection) -> int:
    """How many deadlines are pending."""
    query = select(func.count()).where(deadlines_table.c.status == "pending")
    return int(conn.execute(query).scalar_one())


def late_candidates(conn: Connection, now: datetime) -> list[CaseRecord]:
    """Cases under a policy that are escalated or have a deadline due at ``now``: the
    only ones that can be past a target, found without reading every open case. (A
    clock's next deadline never falls after its target is passed; a warning nobody has
    processed yet, on a back-filled case or with the worker stopped, counts too.)"""
    due_ladder = (
        select(deadlines_table.c.case_id)
        .where(deadlines_table.c.status == "pending")
        .where(deadlines_table.c.due_at <= now)
    )
    query = select(cases).where(
        and_(
            cases.c.sla_policy.is_not(None),
            or_(cases.c.escalation_level >= 1, cases.c.id.in_(due_ladder)),
        )
    )
    return [CaseRecord.from_row(row) for row in conn.execute(query)]


def received_between(
    conn: Connection, start: datetime, end: datetime, event_names: Sequence[str]
) -> tuple[list[CaseRecord], dict[str, list[Any]]]:
    """The cases received in ``[start, end)``, oldest first, and of each its events named
    in ``event_names`` (rows of case_id, event, actor, occurred_at, data), oldest first."""
    in_period = (cases.c.received_at >= start) & (cases.c.received_at < end)
    query_events = (
        select(
            events.c.case_id, events.c.event, events.c.actor, events.c.occurred_at, events.c.data
        )
        .where(events.c.case_id.in_(select(cases.c.id).where(in_period)))
        .where(events.c.event.in_(list(event_names)))
        .order_by(events.c.case_id, events.c.seq)
    )
    found = [
        CaseRecord.from_row(r)
        for r in conn.execute(select(cases).where(in_period).order_by(cases.c.received_at))
    ]
    by_case: dict[str, list[Any]] = defaultdict(list)  # a case with none has none
    for row in conn.execute(query_events):
        by_case[row.case_id].append(row)
    return found, by_case
