"""``store.cases`` in memory: cases and their events: transitions, reads and search."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from casework.storage.case_search import MIN_DIGITS, MIN_ID_PREFIX, SEARCHED_ATTRIBUTES
from casework.storage.case_store import FIELDS
from casework.storage.chain import parse_json
from casework.storage.errors import WriteConflict
from casework.storage.memory.rows import CASE_TIMES, EVENT_TIMES, Rows, event_records
from casework.storage.memory.tx import Role, rows_of
from casework.storage.records import CASE_FIELDS, EVENT_FIELDS, CaseQuery, CaseRecord, EventRecord
from casework.storage.timestamps import as_utc
from casework.storage.transition_sql import OPTIONAL_COLUMNS, UPDATED_COLUMNS
from casework.storage.tx import Tx

UPDATABLE = UPDATED_COLUMNS + OPTIONAL_COLUMNS
"""The case columns an event's update may set."""


class NamedRow(NamedTuple):
    """An event of :meth:`MemoryStore.received_between`, as the SQL store's rows read."""

    case_id: str
    event: str
    actor: str
    occurred_at: datetime
    data: Any


class MemoryCaseLog(Role):
    """``store.cases`` in memory: cases and their events: transitions, reads and search."""

    def insert(self, tx: Tx, case: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        cursor = rows_of(tx)
        if case["id"] in cursor.cases:
            raise WriteConflict(f"case {case['id']!r} exists")
        cursor.cases[case["id"]] = _case_record({"event_format": 1, **case})
        cursor.events[case["id"]] = []
        _insert_event(cursor, event)

    def load(self, tx: Tx, case_id: str) -> CaseRecord | None:
        cursor = rows_of(tx)
        return cursor.cases.get(case_id)

    def load_many(self, tx: Tx, case_ids: list[str]) -> dict[str, CaseRecord]:
        cursor = rows_of(tx)
        return {i: cursor.cases[i] for i in sorted(set(case_ids)) if i in cursor.cases}

    def append(
        self, tx: Tx, event: Mapping[str, Any], update: Mapping[str, Any], *, expected: int
    ) -> bool:
        cursor = rows_of(tx)
        _insert_event(cursor, event)
        return _move(cursor, event["case_id"], update, expected)

    def append_many(
        self,
        tx: Tx,
        events: Sequence[Mapping[str, Any]],
        updates: Sequence[tuple[Mapping[str, Any], int]],
    ) -> None:
        cursor = rows_of(tx)
        for event in events:
            _insert_event(cursor, event)
        for event, (update, expected) in zip(events, updates, strict=True):
            _move(cursor, event["case_id"], update, expected)

    def get(self, case_id: str) -> CaseRecord | None:
        return self._rows.cases.get(case_id)

    def matching(
        self, query: CaseQuery | None = None, *, limit: int | None = None
    ) -> list[CaseRecord]:
        query = query or CaseQuery()
        found = sorted(_matching(self._rows, query), key=lambda c: (c.received_at, c.id))
        if query.after is not None:
            after = (as_utc(query.after[0]), query.after[1])
            found = [c for c in found if (c.received_at, c.id) > after]
        return found if limit is None else found[:limit]

    def by_due(self, query: CaseQuery, limit: int) -> list[tuple[CaseRecord, datetime | None]]:
        rows = self._rows
        found = [(c, _next_due(rows, c.id)) for c in _matching(rows, query)]
        found.sort(key=lambda pair: (pair[1] is None, pair[1] or pair[0].received_at,
                                     pair[0].received_at, pair[0].id))  # fmt: skip
        if query.after_due is not None:
            last_due, received, case_id = query.after_due
            place = (as_utc(received), case_id)

            def after(case: CaseRecord, due: datetime | None) -> bool:
                later = (case.received_at, case.id) > place
                if last_due is None:
                    return due is None and later
                return due is None or due > last_due or (due == last_due and later)

            found = [(c, due) for c, due in found if after(c, due)]
        return found[:limit]

    def count(self, query: CaseQuery) -> int:
        return len(_matching(self._rows, query))

    def find(
        self, asked: str, limit: int, branches: Sequence[str] | None = None
    ) -> list[CaseRecord]:
        text = asked.strip()
        if not text:
            return []
        rows = self._rows
        named = {c for (c, n), (_, v) in rows.personal.items() if n in ("customer", "contact")
                 and v == text}  # fmt: skip
        digits = re.sub(r"[\s\-+()]", "", text)
        if digits.isdigit() and len(digits) >= MIN_DIGITS:
            named |= {c for (c, n), (_, v) in rows.personal.items()
                      if n == "contact" and digits in re.sub(r"[ \-+()]", "", v)}  # fmt: skip
        by_id = len(text) >= MIN_ID_PREFIX and re.fullmatch(r"[0-9a-fA-F]+", text) is not None

        def names(case: CaseRecord) -> bool:
            return (
                case.id in named
                or (by_id and case.id.startswith(text.lower()))
                or any(case.attributes.get(a) == text for a in SEARCHED_ATTRIBUTES)
            )

        found = [c for c in rows.cases.values() if names(c)
                 and (branches is None or c.branch in branches)]  # fmt: skip
        found.sort(key=lambda c: c.id)
        found.sort(key=lambda c: c.received_at, reverse=True)
        return found[:limit]

    def ids_starting(self, prefix: str, limit: int, branch: str | None = None) -> list[str]:
        return sorted(
            c.id for c in self._rows.cases.values()
            if c.id.startswith(prefix) and branch in (None, c.branch)
        )[:limit]  # fmt: skip

    def with_events(self, case_id: str) -> tuple[CaseRecord | None, list[EventRecord]]:
        rows = self._rows
        return rows.cases.get(case_id), event_records(rows, case_id)

    def events_and_cases(
        self, event_ids: Sequence[str], case_ids: Sequence[str]
    ) -> tuple[dict[str, list[EventRecord]], dict[str, CaseRecord]]:
        rows = self._rows
        events = {case_id: event_records(rows, case_id) for case_id in event_ids}
        return events, {i: rows.cases[i] for i in case_ids if i in rows.cases}

    def late_candidates(self, now: datetime) -> list[CaseRecord]:
        now = as_utc(now)
        rows = self._rows
        due = {d.case_id for d in rows.deadlines.values()
               if d.status == "pending" and d.due_at <= now}  # fmt: skip
        return sorted(
            (c for c in rows.cases.values()
             if c.sla_policy is not None and (c.escalation_level >= 1 or c.id in due)),
            key=lambda c: c.id,
        )  # fmt: skip

    def received_between(
        self, start: datetime, end: datetime, event_names: Sequence[str]
    ) -> tuple[list[CaseRecord], dict[str, list[Any]]]:
        rows = self._rows
        start, end = as_utc(start), as_utc(end)
        found = sorted(
            (c for c in rows.cases.values() if start <= c.received_at < end),
            key=lambda c: (c.received_at, c.id),
        )
        named: dict[str, list[Any]] = {}
        for case in sorted(found, key=lambda c: c.id):
            for e in event_records(rows, case.id):
                if e.event in event_names:
                    row = NamedRow(e.case_id, e.event, e.actor, e.occurred_at, e.data)
                    named.setdefault(case.id, []).append(row)
        return found, named

    def named_events(
        self, start: datetime, end: datetime, names: Sequence[str]
    ) -> dict[str, list[EventRecord]]:
        start, end = as_utc(start), as_utc(end)
        found: dict[str, list[EventRecord]] = {}
        for case_id in sorted(self._rows.events):
            named = [e for e in event_records(self._rows, case_id) if e.event in names]
            if any(start <= e.occurred_at < end for e in named):
                found[case_id] = named
        return found


def _case_record(values: Mapping[str, Any]) -> CaseRecord:
    """A case row as stored: times in UTC, JSON columns decoded, undeclared intake empty."""
    row = {name: values[name] for name in CASE_FIELDS}
    for name in CASE_TIMES:
        row[name] = as_utc(row[name], name)
    for name in ("attributes", "facts", "sla"):
        value = row[name]
        row[name] = parse_json(value) if isinstance(value, str) else copy.deepcopy(dict(value))
    row["channel"], row["category"] = row["channel"] or None, row["category"] or None
    return CaseRecord(**row)


def _insert_event(cursor: Rows, event: Mapping[str, Any]) -> None:
    """Add an event row: its case must exist, and its place (case, seq) be free."""
    case_id = event["case_id"]
    cursor.case_must_exist(case_id, "an event")
    if any(e["seq"] == event["seq"] for e in cursor.events[case_id]):
        raise WriteConflict(f"case {case_id!r} has an event {event['seq']} already")
    row = {name: event[name] for name in EVENT_FIELDS}
    for name in EVENT_TIMES:
        row[name] = as_utc(row[name], name)
    data = row["data"]
    row["data"] = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    cursor.events[case_id].append(row)
    cursor.events[case_id].sort(key=lambda e: e["seq"])


def _move(cursor: Rows, case_id: str, update: Mapping[str, Any], expected: int) -> bool:
    """Move the case on with ``update`` if it is still at version ``expected``."""
    case = cursor.cases[case_id]
    if case.version != expected:
        return False
    values = {name: update[name] for name in UPDATABLE if name in update}
    cursor.cases[case_id] = _case_record({**vars(case), **values})
    return True


def _matching(rows: Rows, query: CaseQuery) -> list[CaseRecord]:
    """The cases that match ``query`` (its page position aside)."""
    equal = {name: getattr(query, name) for name in FIELDS if getattr(query, name) is not None}
    start = None if query.received_from is None else as_utc(query.received_from)
    end = None if query.received_until is None else as_utc(query.received_until)
    return [
        c for c in rows.cases.values()
        if all(getattr(c, name) == value for name, value in equal.items())
        and (query.branches is None or c.branch in query.branches)
        and (query.states is None or c.state in query.states)
        and not (query.not_states and c.state in query.not_states)
        and (start is None or c.received_at >= start)
        and (end is None or c.received_at < end)
    ]  # fmt: skip


def _next_due(rows: Rows, case_id: str) -> datetime | None:
    return min(
        (d.due_at for d in rows.deadlines.values()
         if d.case_id == case_id and d.status == "pending"),
        default=None,
    )  # fmt: skip
