"""The case log on SQL: cases and their events, written on the hot path's driver cursor
(:class:`~casework.storage.transition_sql.CaseRows`), read and searched through
SQLAlchemy Core. Nothing updates or deletes an event row.

The table classes are imported by the reads that use them, so a process that only fires
events never loads them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    func,
    literal,
    or_,
    select,
    tuple_,
)

from casework.storage.case_search import CaseSearch
from casework.storage.records import CaseQuery, CaseRecord, EventRecord
from casework.storage.timestamps import UTCDateTime
from casework.storage.transition_sql import CaseRows


class SqlCaseLog(CaseRows, CaseSearch):
    """:class:`casework.storage.port.CaseLog` on SQLite and PostgreSQL."""

    def matching(
        self, query: CaseQuery | None = None, *, limit: int | None = None
    ) -> list[CaseRecord]:
        """Cases in the order they were received (then by id) that match ``query``."""
        from casework.storage.tables import cases_table as cases

        with self.sql.reading() as conn:
            where = query or CaseQuery()
            statement = (
                select(cases).where(*_matching(where)).order_by(cases.c.received_at, cases.c.id)
            )
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

    def by_due(self, query: CaseQuery, limit: int) -> list[tuple[CaseRecord, datetime | None]]:
        """Cases that match ``query``, the next pending deadline first (those without one
        last, then in received order), at most ``limit``, each with that deadline."""
        from casework.storage.tables import cases_table as cases
        from casework.storage.tables import deadlines_table

        with self.sql.reading() as conn:
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
                    statement = statement.where(
                        or_(due.is_(None), due > at, and_(due == at, later))
                    )
            found = []
            for row in conn.execute(statement):
                value = row.next_due
                moment = datetime.fromisoformat(value) if isinstance(value, str) else value
                found.append((CaseRecord.from_row(row), moment))
            return found

    def count(self, query: CaseQuery) -> int:
        """How many cases match ``query`` (its page position aside)."""
        from casework.storage.tables import cases_table as cases

        with self.sql.reading() as conn:
            statement = select(func.count()).select_from(cases).where(*_matching(query))
            return int(conn.execute(statement).scalar_one())

    def ids_starting(self, prefix: str, limit: int, branch: str | None = None) -> list[str]:
        """Up to ``limit`` case ids that start with ``prefix`` (of ``branch``'s cases only, if
        given), in order."""
        from casework.storage.tables import cases_table as cases

        with self.sql.reading() as conn:
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

    def events_and_cases(
        self, event_ids: Sequence[str], case_ids: Sequence[str]
    ) -> tuple[dict[str, list[EventRecord]], dict[str, CaseRecord]]:
        """The events of the cases ``event_ids`` and the cases ``case_ids``, read together."""
        with self.sql.reading() as conn:
            return _events_of(conn, event_ids), _load_cases(conn, case_ids)

    def late_candidates(self, now: datetime) -> list[CaseRecord]:
        """Cases under a policy that are escalated or have a deadline due at ``now``: the
        only ones that can be past a target, found without reading every open case. (A
        clock's next deadline never falls after its target is passed; a warning nobody has
        processed yet, on a back-filled case or with the worker stopped, counts too.)"""
        from casework.storage.tables import cases_table as cases
        from casework.storage.tables import deadlines_table

        with self.sql.reading() as conn:
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
        self, start: datetime, end: datetime, event_names: Sequence[str]
    ) -> tuple[list[CaseRecord], dict[str, list[Any]]]:
        """The cases received in ``[start, end)``, oldest first, and of each its events named
        in ``event_names`` (rows of case_id, event, actor, occurred_at, data), oldest first."""
        from casework.storage.tables import cases_table as cases
        from casework.storage.tables import events_table as events

        with self.sql.reading() as conn:
            in_period = (cases.c.received_at >= start) & (cases.c.received_at < end)
            query_events = (
                select(
                    events.c.case_id,
                    events.c.event,
                    events.c.actor,
                    events.c.occurred_at,
                    events.c.data,
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

    def named_events(
        self, start: datetime, end: datetime, names: Sequence[str]
    ) -> dict[str, list[EventRecord]]:
        """Of every case with an event named in ``names`` in ``[start, end)``, all its
        events of those names (earlier ones too: a repeat visit needs the first), oldest
        first, by case id."""
        from casework.storage.tables import events_table as events

        with self.sql.reading() as conn:
            touched = (
                select(events.c.case_id)
                .where(events.c.event.in_(list(names)))
                .where(events.c.occurred_at >= start, events.c.occurred_at < end)
                .distinct()
            )
            query = (
                select(events)
                .where(events.c.case_id.in_(touched), events.c.event.in_(list(names)))
                .order_by(events.c.case_id, events.c.seq)
            )
            found: dict[str, list[EventRecord]] = defaultdict(list)
            for row in conn.execute(query):
                found[row.case_id].append(EventRecord.from_row(row))
            return dict(found)


def _load_cases(conn: Connection, case_ids: Sequence[str]) -> dict[str, CaseRecord]:
    """Several case records by id (those that exist)."""
    from casework.storage.tables import cases_table as cases

    if not case_ids:
        return {}
    query = select(cases).where(cases.c.id.in_(list(case_ids)))
    return {row.id: CaseRecord.from_row(row) for row in conn.execute(query)}


def _events_of(conn: Connection, case_ids: Sequence[str]) -> dict[str, list[EventRecord]]:
    """The events of several cases, each case's oldest first."""
    from casework.storage.tables import events_table as events

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


FIELDS = ("state", "branch", "owner", "customer", "channel", "category", "priority")
"""The case columns a :class:`CaseQuery` matches by equality."""


def _matching(query: CaseQuery) -> list[ColumnElement[bool]]:
    """The conditions of ``query`` but its page position."""
    from casework.storage.tables import cases_table as cases

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
