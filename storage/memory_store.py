"""The storage port in plain Python: the reference store, and a store for a host's tests.

Every table is a dict (or a list) of records, and what each port method does is written
out here as simply as it can be, so this module reads as the contract itself: the same
ordering, conflicts, claims and leases as the SQL store, every time timezone-aware UTC.
It passes the same contract suite (``tests/contract/``) as SQLite and PostgreSQL.

A transaction works on a deep copy of the rows and, when it ends without an error, puts
the copy in their place; a read takes the rows as they stand (one consistent moment,
since committed rows are never changed in place). One writer at a time, as on SQLite.
Nothing outlives the process, and no host's database transaction can be joined.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from casework.storage.case_search import MIN_DIGITS, MIN_ID_PREFIX, SEARCHED_ATTRIBUTES
from casework.storage.case_store import FIELDS
from casework.storage.chain import parse_json
from casework.storage.checkpoint_sql import Heads
from casework.storage.errors import StorageError, WriteConflict
from casework.storage.notify_store import NOTIFY_KIND
from casework.storage.personal_sql import ERASED_TEXT, PENDING_KEY, scrub, scrub_text
from casework.storage.port import DeadlineKey, Listener
from casework.storage.records import (
    CASE_FIELDS,
    DUE_STATUSES,
    EVENT_FIELDS,
    STATUSES,
    WEBHOOK_KIND,
    CaseQuery,
    CaseRecord,
    DueDeadline,
    EventRecord,
    Figures,
    Heartbeat,
    JobCount,
    OutboxMail,
    PartnerRecord,
    Remembered,
    SessionRecord,
    Streams,
    TokenRecord,
    WebhookRecord,
)
from casework.storage.timestamps import as_utc, iso
from casework.storage.transition_sql import OPTIONAL_COLUMNS, UPDATED_COLUMNS
from casework.storage.tx import Tx

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from casework.storage.port import Store

UNJOINABLE = "the memory store keeps its rows in this process and joins no database transaction"
"""Why a host's transaction cannot be joined: there is no database."""
UPDATABLE = UPDATED_COLUMNS + OPTIONAL_COLUMNS
"""The case columns an event's update may set."""
CASE_TIMES = ("received_at", "opened_at", "last_event_at")
EVENT_TIMES = ("occurred_at", "recorded_at")


class NamedRow(NamedTuple):
    """An event of :meth:`MemoryStore.received_between`, as the SQL store's rows read."""

    case_id: str
    event: str
    actor: str
    occurred_at: datetime
    data: Any


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


class MemoryStore:
    """:class:`casework.storage.port.Store` in this process's memory. Safe to share between
    threads."""

    def __init__(self, *, read_only: bool = False, box: Box | None = None) -> None:
        self._box = box or Box()
        self.read_only = read_only
        self.cases = MemoryCaseLog(self)
        self.deadlines = MemoryDeadlines(self)
        self.outbox = MemoryOutbox(self)
        self.personal = MemoryPersonalData(self)
        self.access = MemoryAccess(self)
        self.webhooks = MemoryWebhooks(self)
        self.service = MemoryService(self)
        self.partners = MemoryPartners(self)
        self.attachments = MemoryAttachments(self)
        self.audit = MemoryAuditStreams(self)

    def twin(self, *, read_only: bool) -> MemoryStore:
        """Another store on the same rows (one that refuses writes, if ``read_only``)."""
        return MemoryStore(read_only=read_only, box=self._box)

    def held(self) -> int:
        """1 while a write transaction holds the rows, else 0 (no connection to leave
        checked out, but a transaction left open would block every writer)."""
        return int(self._box.writer.locked())

    @property
    def _rows(self) -> Rows:
        """The committed rows: read them, never change them."""
        return self._box.rows

    @contextmanager
    def _writing(self) -> Iterator[Rows]:
        """A write transaction on a copy of the rows, put in their place on success."""
        if self.read_only:
            raise StorageError("the store refuses writes (read-only)", read_only=True)
        box = self._box
        if box.writing == threading.get_ident():  # it would wait for itself for ever
            raise StorageError("a write began inside a write transaction of the same thread")
        with box.writer:
            box.writing = threading.get_ident()
            try:
                working = copy.deepcopy(box.rows)
                yield working
                box.rows = working
            finally:
                box.writing = None

    def transaction(self, connection: Connection | None = None) -> AbstractContextManager[Tx]:
        if connection is not None:
            raise StorageError(UNJOINABLE)
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        with self._writing() as rows:
            yield MemoryTx(rows)

    def unjoinable(self, connection: Connection) -> str | None:
        return UNJOINABLE

    def close(self) -> None:
        """Nothing to release."""

    def server_time(self) -> datetime | None:
        return None

    def database_id(self) -> str | None:
        return self._rows.meta.get("database_id")


class MemoryTx(Tx):
    """The memory store's transaction handle: the working copy of the rows it writes."""

    __slots__ = ("rows",)

    def __init__(self, rows: Rows) -> None:
        self.rows = rows


def _rows_of(tx: Tx) -> Rows:
    """The working rows of a memory store's transaction."""
    if not isinstance(tx, MemoryTx):
        raise StorageError("a memory store takes only its own transactions")
    return tx.rows


class _Role:
    """What every role of a memory store shares: the store's rows and its writer."""

    def __init__(self, store: MemoryStore) -> None:
        self._memory = store

    @property
    def _rows(self) -> Rows:
        """The committed rows: read them, never change them."""
        return self._memory._box.rows

    def _writing(self) -> AbstractContextManager[Rows]:
        return self._memory._writing()


class MemoryCaseLog(_Role):
    """``store.cases`` in memory: cases and their events: transitions, reads and search."""

    def insert(self, tx: Tx, case: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        cursor = _rows_of(tx)
        if case["id"] in cursor.cases:
            raise WriteConflict(f"case {case['id']!r} exists")
        cursor.cases[case["id"]] = _case_record({"event_format": 1, **case})
        cursor.events[case["id"]] = []
        _insert_event(cursor, event)

    def load(self, tx: Tx, case_id: str) -> CaseRecord | None:
        cursor = _rows_of(tx)
        return cursor.cases.get(case_id)

    def load_many(self, tx: Tx, case_ids: list[str]) -> dict[str, CaseRecord]:
        cursor = _rows_of(tx)
        return {i: cursor.cases[i] for i in sorted(set(case_ids)) if i in cursor.cases}

    def append(
        self, tx: Tx, event: Mapping[str, Any], update: Mapping[str, Any], *, expected: int
    ) -> bool:
        cursor = _rows_of(tx)
        _insert_event(cursor, event)
        return _move(cursor, event["case_id"], update, expected)

    def append_many(
        self,
        tx: Tx,
        events: Sequence[Mapping[str, Any]],
        updates: Sequence[tuple[Mapping[str, Any], int]],
    ) -> None:
        cursor = _rows_of(tx)
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
        return rows.cases.get(case_id), _events(rows, case_id)

    def events_and_cases(
        self, event_ids: Sequence[str], case_ids: Sequence[str]
    ) -> tuple[dict[str, list[EventRecord]], dict[str, CaseRecord]]:
        rows = self._rows
        events = {case_id: _events(rows, case_id) for case_id in event_ids}
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
            for e in _events(rows, case.id):
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
            named = [e for e in _events(self._rows, case_id) if e.event in names]
            if any(start <= e.occurred_at < end for e in named):
                found[case_id] = named
        return found


class MemoryDeadlines(_Role):
    """``store.deadlines`` in memory: SLA policies and the deadline queue."""

    def store_policy(
        self, tx: Tx, version: str, name: str, document: Mapping[str, Any], now: datetime
    ) -> None:
        cursor = _rows_of(tx)
        as_utc(now)
        cursor.policies.setdefault(version, copy.deepcopy(dict(document)))

    def plan(self, tx: Tx, case_id: str, key: DeadlineKey, due_at: datetime) -> None:
        cursor = _rows_of(tx)
        cursor.case_must_exist(case_id, "a deadline")
        due_at = as_utc(due_at)
        found = cursor.deadline(case_id, key)
        if found is None:
            new_id = cursor.next_id()
            cursor.deadlines[new_id] = Deadline(new_id, case_id, key, due_at)
        elif found.status != "fired":  # a fired deadline stays fired
            found.due_at, found.status = due_at, "pending"

    def cancel(self, tx: Tx, case_id: str, key: DeadlineKey) -> None:
        cursor = _rows_of(tx)
        found = cursor.deadline(case_id, key)
        if found is not None and found.status == "pending":
            found.status = "cancelled"

    def plan_many(self, tx: Tx, rows: list[tuple[str, DeadlineKey, datetime]]) -> None:
        for case_id, key, due_at in rows:
            self.plan(tx, case_id, key, due_at)

    def cancel_many(self, tx: Tx, rows: list[tuple[str, DeadlineKey]]) -> None:
        for case_id, key in rows:
            self.cancel(tx, case_id, key)

    def announce(self, tx: Tx, due_at: datetime) -> None:
        """No other process shares the rows: nobody to tell."""
        _rows_of(tx)
        as_utc(due_at)

    def listen(
        self, heard: Callable[[datetime], None], failed: Callable[[Exception], None]
    ) -> Listener | None:
        return None

    def claim(self, tx: Tx, now: datetime, limit: int) -> list[DueDeadline]:
        cursor = _rows_of(tx)
        now = as_utc(now)
        due = sorted(
            (d for d in cursor.deadlines.values() if d.status == "pending" and d.due_at <= now),
            key=lambda d: (d.due_at, d.id),
        )[:limit]
        for deadline in due:
            deadline.status, deadline.fired_at = "fired", now
        return [DueDeadline(d.id, d.case_id, *d.key, d.due_at) for d in due]

    def unclaim(self, tx: Tx, rows: list[tuple[str, datetime, int]]) -> None:
        cursor = _rows_of(tx)
        for status, due_at, deadline_id in rows:
            found = cursor.deadlines.get(deadline_id)
            if found is not None:
                found.status, found.due_at, found.fired_at = status, as_utc(due_at), None

    def policies(self) -> dict[str, Any]:
        return copy.deepcopy(self._rows.policies)

    def next_due(self) -> datetime | None:
        pending = [d.due_at for d in self._rows.deadlines.values() if d.status == "pending"]
        return min(pending, default=None)

    def pending_count(self) -> int:
        return sum(d.status == "pending" for d in self._rows.deadlines.values())


class MemoryOutbox(_Role):
    """``store.outbox`` in memory: mails, webhook deliveries and notifications, and their leases."""

    def queue(self, tx: Tx, mails: Sequence[Mapping[str, Any]]) -> None:
        cursor = _rows_of(tx)
        for mail in mails:
            if any(m.dedupe_key == mail["dedupe_key"] for m in cursor.outbox.values()):
                continue  # queued already
            if mail["case_id"] is not None:
                cursor.case_must_exist(mail["case_id"], "a mail")
            deadline_id = mail.get("deadline_id")
            if deadline_id is not None and deadline_id not in cursor.deadlines:
                raise WriteConflict(f"a mail names deadline {deadline_id}, which does not exist")
            new_id = cursor.next_id()
            cursor.outbox[new_id] = Mail(
                new_id, mail["dedupe_key"], mail["case_id"], deadline_id, mail["kind"],
                mail["level"], list(mail["recipients"]), copy.deepcopy(mail["body"]),
                as_utc(mail["next_attempt_at"]), as_utc(mail["created_at"]),
            )  # fmt: skip

    def claim(
        self,
        *,
        due_by: datetime,
        lease_until: datetime,
        token: str,
        limit: int,
        hold_until: Callable[[OutboxMail], datetime | None],
        kind: str = "mail",
    ) -> tuple[list[OutboxMail], int]:
        due_by, lease_until = as_utc(due_by), as_utc(lease_until)
        with self._writing() as rows:
            due = sorted(
                (m for m in rows.outbox.values() if m.status in DUE_STATUSES
                 and m.next_attempt_at <= due_by and _of_kind(m, kind)),
                key=lambda m: (m.next_attempt_at, m.id),
            )[:limit]  # fmt: skip
            ready, held = [], 0
            for mail in sorted(due, key=lambda m: m.id):
                mail.status, mail.lease_token = "sending", token
                mail.next_attempt_at, mail.attempts = lease_until, mail.attempts + 1
                opens = hold_until(mail.record())
                if opens is None:
                    ready.append(mail.record())
                else:  # quiet hours: held, and the claim counts as no attempt
                    mail.status, mail.lease_token, mail.attempts = "held", None, mail.attempts - 1
                    mail.next_attempt_at = mail.held_until = as_utc(opens)
                    held += 1
        return ready, held

    def release(self, mail_ids: Sequence[int], token: str, at: datetime) -> int:
        at = as_utc(at)
        with self._writing() as rows:
            leased = _leased(rows, mail_ids, token)
            for mail in leased:
                mail.status, mail.next_attempt_at, mail.lease_token = "pending", at, None
                mail.attempts -= 1
        return len(leased)

    def mark_sent(
        self, accepted: Sequence[tuple[int, str, str | None]], token: str, at: datetime
    ) -> int:
        at = as_utc(at)
        done = 0
        with self._writing() as rows:
            for mail_id, message_id, note in accepted:
                for mail in _leased(rows, [mail_id], token):
                    mail.status, mail.sent_at, mail.lease_token = "sent", at, None
                    mail.message_id, mail.last_error = message_id, note
                    done += 1
        return done

    def mark_failed(
        self,
        retry: Sequence[tuple[int, datetime]],
        dead: Sequence[int],
        token: str,
        *,
        error: str,
        buried: str,
    ) -> tuple[int, int]:
        retried = 0
        with self._writing() as rows:
            for mail_id, at in retry:
                for mail in _leased(rows, [mail_id], token):
                    mail.status, mail.next_attempt_at, mail.lease_token = (
                        "pending",
                        as_utc(at),
                        None,
                    )
                    mail.last_error = error[:2000]
                    retried += 1
            died = _leased(rows, dead, token)
            for mail in died:
                mail.status, mail.lease_token, mail.last_error = "dead", None, buried[:2000]
        return retried, len(died)

    def requeue(self, mail_id: int, now: datetime) -> tuple[OutboxMail | None, OutboxMail | None]:
        now = as_utc(now)
        with self._writing() as rows:
            mail = rows.outbox.get(mail_id)
            if mail is None:
                return None, None
            if mail.status != "dead":
                return None, mail.record()
            mail.status, mail.next_attempt_at, mail.attempts, mail.held_until = (
                "pending", now, 0, None
            )  # fmt: skip
            return mail.record(), None

    def requeue_all(self, status: str, now: datetime, kind: str | None = None) -> int:
        now = as_utc(now)
        with self._writing() as rows:
            found = [m for m in rows.outbox.values() if m.status == status and _of_kind(m, kind)]
            for mail in found:
                mail.status, mail.next_attempt_at, mail.held_until = "pending", now, None
                if status == "dead":
                    mail.attempts = 0
        return len(found)

    def rows(
        self,
        *,
        status: str | None = None,
        limit: int | None = None,
        kind: str | None = None,
        case_id: str | None = None,
        branch: str | Sequence[str] | None = None,
        mail_id: int | None = None,
    ) -> list[OutboxMail]:
        rows = self._rows
        branches = [branch] if isinstance(branch, str) else branch

        def wanted(mail: Mail) -> bool:
            case = rows.cases.get(mail.case_id or "")
            return (
                _of_kind(mail, kind)
                and status in (None, mail.status)
                and case_id in (None, mail.case_id)
                and mail_id in (None, mail.id)
                and (branches is None or (case is not None and case.branch in branches))
            )

        found = [m.record() for _, m in sorted(rows.outbox.items()) if wanted(m)]
        return found if limit is None else found[:limit]

    def counts(self, kind: str | None = None) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for mail in self._rows.outbox.values():
            if _of_kind(mail, kind):
                counts[mail.status] += 1
        return counts

    def next_attempt(self) -> datetime | None:
        return min(
            (m.next_attempt_at for m in self._rows.outbox.values() if m.status in DUE_STATUSES),
            default=None,
        )


class MemoryPersonalData(_Role):
    """``store.personal`` in memory: personal values, each customer's secret, erasure."""

    def subject_for(
        self, tx: Tx, customer: str, new: tuple[str, str], now: datetime
    ) -> tuple[str, str]:
        cursor = _rows_of(tx)
        theirs = [
            subject
            for (_, name), (subject, value) in cursor.personal.items()
            if name == "customer" and value == customer and subject in cursor.subjects
        ]
        if theirs:
            latest = max(theirs, key=lambda s: cursor.subjects[s][1])
            return latest, cursor.subjects[latest][0]
        if new[0] in cursor.subjects:
            raise WriteConflict(f"subject {new[0]!r} exists")
        cursor.subjects[new[0]] = (new[1], as_utc(now))
        return new

    def put(self, tx: Tx, case_id: str, subject_id: str, values: Mapping[str, str]) -> None:
        cursor = _rows_of(tx)
        cursor.case_must_exist(case_id, "a personal value")
        if subject_id not in cursor.subjects:
            raise WriteConflict(f"subject {subject_id!r} does not exist")
        for name, value in values.items():
            if (case_id, name) in cursor.personal:
                raise WriteConflict(f"case {case_id!r} keeps a {name} already")
            cursor.personal[case_id, name] = (subject_id, value)

    def subjects_named(self, tx: Tx, customer: str) -> list[str]:
        cursor = _rows_of(tx)
        return sorted(
            {
                s
                for (_, name), (s, v) in cursor.personal.items()
                if (name, v) == ("customer", customer)
            }
        )

    def values_of(self, tx: Tx, subjects: Sequence[str]) -> dict[str, dict[str, str]]:
        cursor = _rows_of(tx)
        found: dict[str, dict[str, str]] = {}
        for (case_id, name), (subject, value) in sorted(cursor.personal.items()):
            if subject in subjects:
                found.setdefault(case_id, {})[name] = value
        return found

    def erase(
        self, tx: Tx, subjects: Sequence[str], cases: Sequence[str], values: Sequence[str],
        now: datetime,
    ) -> None:  # fmt: skip
        cursor = _rows_of(tx)
        if not subjects:
            return
        cursor.personal = {k: v for k, v in cursor.personal.items() if v[0] not in subjects}
        cursor.subjects = {k: v for k, v in cursor.subjects.items() if k not in subjects}
        cursor.outbox = {  # messages to the customer not sent yet are never sent
            i: m for i, m in cursor.outbox.items()
            if not (m.kind == NOTIFY_KIND and m.status in DUE_STATUSES and m.case_id in cases)
        }  # fmt: skip
        since = cursor.meta.get(PENDING_KEY, iso(now)).split(" ", 1)[0]
        cursor.meta[PENDING_KEY] = f"{since} {secrets.token_hex(8)}"
        gone = {v for v in values if v}
        if not gone:
            return
        for mail in cursor.outbox.values():
            if mail.case_id in cases:
                body, recipients = scrub(mail.body, gone), scrub(mail.recipients, gone)
                mail.body = mail.body if body is None else body
                mail.recipients = mail.recipients if recipients is None else recipients
                mail.last_error = scrub_text(mail.last_error, gone) or mail.last_error
        for key, answer in cursor.answers.items():
            body = scrub(answer.body, gone, cases=set(cases))
            if body is not None:
                cursor.answers[key] = replace(answer, body=body)

    def expunge(self) -> str:
        """Nothing is kept in files: the pending mark is cleared."""
        if PENDING_KEY in self._rows.meta:
            with self._writing() as rows:
                del rows.meta[PENDING_KEY]
        return "nothing to compact: the memory store keeps no files"

    def compaction_pending(self) -> datetime | None:
        value = self._rows.meta.get(PENDING_KEY)
        return None if value is None else as_utc(datetime.fromisoformat(value.split(" ")[0]))

    def rows(
        self, case_id: str | None
    ) -> tuple[list[tuple[Any, ...]], dict[str, dict[str, tuple[str, str]]]]:
        rows = self._rows
        cases = [
            (c.id, c.customer, c.contact, dict(c.attributes), dict(c.facts),
             parse_json(rows.events[c.id][0]["data"]))
            for c in sorted(rows.cases.values(), key=lambda c: c.id)
            if c.event_format == 2 and case_id in (None, c.id)
        ]  # fmt: skip
        values: dict[str, dict[str, tuple[str, str]]] = {}
        for (of_case, name), (subject, value) in rows.personal.items():
            if case_id in (None, of_case):
                secret = rows.subjects[subject][0] if subject in rows.subjects else ""
                values.setdefault(of_case, {})[name] = (value, secret)
        return cases, values

    def resting_customers(self, resting: Sequence[str], before: datetime) -> list[str]:
        before = as_utc(before)
        by_customer: dict[str, list[CaseRecord]] = {}
        for case in self._rows.cases.values():
            if case.customer != ERASED_TEXT:
                by_customer.setdefault(case.customer, []).append(case)
        return sorted(
            customer
            for customer, cases in by_customer.items()
            if all(c.event_format == 2 and c.state in resting and c.last_event_at < before
                   for c in cases)
        )  # fmt: skip


class MemoryAccess(_Role):
    """``store.access`` in memory: tokens, kept answers and console sessions."""

    def settle(self, token_id: str, key: str, answer: Remembered) -> None:
        with self._writing() as rows:
            kept = rows.answers.get((token_id, key))
            if kept is not None and kept.created_at == answer.created_at:
                rows.answers[token_id, key] = copy.deepcopy(answer)

    def forget(self, token_id: str, key: str) -> None:
        with self._writing() as rows:
            rows.answers.pop((token_id, key), None)

    def add_session(
        self,
        secret_hash: str,
        token_id: str,
        csrf: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        with self._writing() as rows:
            if secret_hash in rows.sessions:
                raise WriteConflict("a session with that cookie exists")
            rows.sessions[secret_hash] = (token_id, csrf, as_utc(created_at), as_utc(expires_at))

    def session(self, secret_hash: str) -> SessionRecord | None:
        rows = self._rows
        found = rows.sessions.get(secret_hash)
        if found is None or found[0] not in rows.tokens:
            return None
        return SessionRecord(rows.tokens[found[0]][0], found[1], found[3])

    def drop_session(self, secret_hash: str, now: datetime) -> None:
        now = as_utc(now)
        with self._writing() as rows:
            rows.sessions = {
                h: s for h, s in rows.sessions.items() if h != secret_hash and s[3] >= now
            }

    def add_token(self, token: TokenRecord, secret_hash: str) -> None:
        with self._writing() as rows:
            if token.id in rows.tokens or any(h == secret_hash for _, h in rows.tokens.values()):
                raise WriteConflict(f"token {token.id!r} or its secret exists")
            rows.tokens[token.id] = (_utc_times(token), secret_hash)

    def token_by_hash(self, secret_hash: str) -> TokenRecord | None:
        return next((t for t, h in self._rows.tokens.values() if h == secret_hash), None)

    def tokens(self) -> list[TokenRecord]:
        return sorted(
            (t for t, _ in self._rows.tokens.values()), key=lambda t: (t.created_at, t.id)
        )

    def revoke_token(self, token_id: str, at: datetime) -> TokenRecord | None:
        with self._writing() as rows:
            if token_id not in rows.tokens:
                return None
            token, secret_hash = rows.tokens[token_id]
            if token.revoked_at is None:  # the first revocation's time stays
                token = replace(token, revoked_at=as_utc(at))
                rows.tokens[token_id] = (token, secret_hash)
            return token

    def recall(self, token_id: str, key: str) -> Remembered | None:
        return copy.deepcopy(self._rows.answers.get((token_id, key)))

    def remember(self, token_id: str, key: str, answer: Remembered) -> bool:
        with self._writing() as rows:
            if (token_id, key) in rows.answers:
                return False
            rows.answers[token_id, key] = _utc_times(copy.deepcopy(answer))
        return True

    def take_over(self, token_id: str, key: str, held_since: datetime, now: datetime) -> bool:
        with self._writing() as rows:
            kept = rows.answers.get((token_id, key))
            if kept is None or kept.status != 0 or kept.created_at != as_utc(held_since):
                return False
            rows.answers[token_id, key] = replace(kept, created_at=as_utc(now))
        return True

    def forget_before(self, moment: datetime) -> int:
        moment = as_utc(moment)
        with self._writing() as rows:
            old = [k for k, a in rows.answers.items() if a.created_at < moment]
            for key in old:
                del rows.answers[key]
        return len(old)


class MemoryWebhooks(_Role):
    """``store.webhooks`` in memory: webhook subscriptions."""

    def targets(self, tx: Tx) -> list[tuple[str, str, tuple[str, ...], str | None]]:
        cursor = _rows_of(tx)
        return [
            (h.id, h.url, h.events, h.branch)
            for _, h in sorted(cursor.webhooks.items())
            if h.removed_at is None
        ]

    def add(self, hook: WebhookRecord) -> None:
        with self._writing() as rows:
            if hook.id in rows.webhooks:
                raise WriteConflict(f"webhook {hook.id!r} exists")
            rows.webhooks[hook.id] = _utc_times(hook)

    def subscriptions(self, *, removed: bool = False) -> list[WebhookRecord]:
        return sorted(
            (h for h in self._rows.webhooks.values() if removed or h.removed_at is None),
            key=lambda h: (h.created_at, h.id),
        )

    def remove(self, hook_id: str, at: datetime) -> WebhookRecord | None:
        with self._writing() as rows:
            hook = rows.webhooks.get(hook_id)
            if hook is not None and hook.removed_at is None:
                hook = rows.webhooks[hook_id] = replace(hook, removed_at=as_utc(at))
            return hook


class MemoryService(_Role):
    """``store.service`` in memory: workers' heartbeats and the figures ``/metrics`` publishes."""

    def beat(self, worker: str, started_at: datetime, at: datetime) -> None:
        with self._writing() as rows:
            first = rows.beats.get(worker)
            started = as_utc(started_at) if first is None else first.started_at
            rows.beats[worker] = Heartbeat(worker, started, as_utc(at))

    def latest_beat(self) -> Heartbeat | None:
        return max(self._rows.beats.values(), key=lambda b: b.beat_at, default=None)

    def figures(self, now: datetime, lag_bounds: Sequence[float]) -> Figures:
        now = as_utc(now)
        rows = self._rows
        pending = [d for d in rows.deadlines.values() if d.status == "pending"]
        outbox: dict[tuple[str, str], int] = {}
        for mail in rows.outbox.values():
            outbox[mail.kind, mail.status] = outbox.get((mail.kind, mail.status), 0) + 1
        waiting = [m.created_at for m in rows.outbox.values()
                   if m.status in ("pending", "held") and m.kind != WEBHOOK_KIND]  # fmt: skip
        lags = [(d.fired_at - d.due_at).total_seconds() for d in rows.deadlines.values()
                if d.status == "fired" and d.fired_at is not None]  # fmt: skip
        return Figures(
            deadlines_pending=len(pending),
            deadlines_overdue=sum(d.due_at <= now for d in pending),
            outbox=outbox,
            oldest_pending_mail=min(waiting, default=None),
            fire_lag_buckets=[(b, sum(lag <= b for lag in lags)) for b in lag_bounds],
            fire_lag_count=len(lags),
            fire_lag_sum=float(sum(lags)),
        )


class MemoryPartners(_Role):
    """``store.partners`` in memory: partners and the jobs dispatched to them."""

    def add(self, partner: PartnerRecord) -> bool:
        with self._writing() as rows:
            if partner.id in rows.partners:
                return False
            rows.partners[partner.id] = _utc_times(partner)
        return True

    def registered(self) -> list[PartnerRecord]:
        return [p for _, p in sorted(self._rows.partners.items())]

    def add_jobs(self, rows: Sequence[Mapping[str, Any]]) -> int:
        with self._writing() as tables:
            tables.jobs.extend({**r, "done_at": as_utc(r["done_at"])} for r in rows)
        return sum(int(r["jobs"]) for r in rows)

    def job_counts(self, start: datetime, end: datetime) -> list[JobCount]:
        start, end = as_utc(start), as_utc(end)
        totals: dict[tuple[str, str, str | None, str | None], int] = {}
        for job in self._rows.jobs:
            if start <= job["done_at"] < end:
                group = (job["kind"], job["branch"], job.get("category"), job.get("partner"))
                totals[group] = totals.get(group, 0) + int(job["jobs"])

        def order(group: tuple[str, str, str | None, str | None]) -> tuple[Any, ...]:
            kind, branch, category, partner = group
            return (branch, category is not None, category or "", partner is not None,
                    partner or "", kind)  # fmt: skip

        return [JobCount(*group, totals[group]) for group in sorted(totals, key=order)]


class MemoryAttachments(_Role):
    """``store.attachments`` in memory: evidence files by digest."""

    def put(
        self, digest: str, content: bytes, at: datetime, connection: Connection | None = None
    ) -> bool:
        if connection is not None:
            raise StorageError(UNJOINABLE)
        as_utc(at)
        with self._writing() as rows:
            if digest in rows.attachments:
                return False
            rows.attachments[digest] = bytes(content)
        return True

    def get(self, digest: str) -> bytes | None:
        return self._rows.attachments.get(digest)

    def cases(self, digest: str) -> list[CaseRecord]:
        rows = self._rows
        return [
            rows.cases[case_id]
            for case_id in sorted(rows.events)
            if any(_attaches(e.data, digest) for e in _events(rows, case_id))
        ]


class MemoryAuditStreams(_Role):
    """``store.audit`` in memory: whole-history streams from one moment."""

    def replication(self) -> dict[str, Any] | None:
        return None

    @contextmanager
    def _snapshot(
        self,
        case_ids: Sequence[str] | None,
        id_range: tuple[str | None, str | None],
        received: tuple[datetime, datetime] | None,
    ) -> Iterator[Streams]:
        rows = self._rows
        low, high = id_range

        def wanted(case: CaseRecord) -> bool:
            if received is not None:
                return as_utc(received[0]) <= case.received_at < as_utc(received[1])
            if case_ids is not None:
                return case.id in case_ids
            return (low is None or case.id >= low) and (high is None or case.id < high)

        cases = sorted((c for c in rows.cases.values() if wanted(c)), key=lambda c: c.id)
        yield Streams(
            cases=iter([_case_tuple(c) for c in cases]),
            events=iter([_event_tuple(e) for c in cases for e in rows.events[c.id]]),
            deadlines=iter([
                (d.case_id, *d.key, iso(d.due_at))
                for d in sorted(rows.deadlines.values(), key=lambda d: (d.case_id, d.id))
                if d.status == "pending" and wanted(rows.cases[d.case_id])
            ]),
        )  # fmt: skip

    def snapshot(
        self,
        case_ids: Sequence[str] | None = None,
        id_range: tuple[str | None, str | None] = (None, None),
        received: tuple[datetime, datetime] | None = None,
    ) -> AbstractContextManager[Streams]:
        return self._snapshot(case_ids, id_range, received)

    def middle_case_id(self) -> str | None:
        ids = sorted(self._rows.cases)
        return None if len(ids) < 2 else ids[len(ids) // 2]

    @contextmanager
    def _exported(
        self, case_id: str | None, since: str | None, until: str | None
    ) -> Iterator[Iterator[tuple[Any, ...]]]:
        rows = self._rows
        start = None if since is None else as_utc(datetime.fromisoformat(since))
        end = None if until is None else as_utc(datetime.fromisoformat(until))
        found = []
        for case in sorted(rows.cases.values(), key=lambda c: c.id):
            if case_id not in (None, case.id):
                continue
            for event in rows.events[case.id]:
                at = event["occurred_at"]
                if (start is None or at >= start) and (end is None or at < end):
                    personal = None
                    if event["seq"] == 1 and case.event_format == 2:
                        kept = {n: v for (c, n), (_, v) in rows.personal.items() if c == case.id}
                        personal = json.dumps(kept, ensure_ascii=False) if kept else None
                    found.append((*_event_tuple(event), case.machine, case.machine_version,
                                  case.event_format, personal))  # fmt: skip
        yield iter(found)

    def export_rows(
        self,
        case_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> AbstractContextManager[Iterator[tuple[Any, ...]]]:
        return self._exported(case_id, since, until)

    @contextmanager
    def _heads(self, at: datetime) -> Iterator[Heads]:
        at = as_utc(at)
        rows = self._rows
        recorded = [
            (e["case_id"], e["seq"], e["hash"])
            for case_id in sorted(rows.events)
            for e in rows.events[case_id]
            if e["recorded_at"] <= at
        ]
        yield Heads(_Fetched(recorded))

    def case_heads(self, at: datetime) -> AbstractContextManager[Heads]:
        return self._heads(at)


class _Fetched:
    """Rows handed out as a driver cursor's ``fetchmany`` would."""

    def __init__(self, rows: list[tuple[str, int, str]]) -> None:
        self._rows = rows

    def fetchmany(self, size: int) -> list[tuple[str, int, str]]:
        batch, self._rows = self._rows[:size], self._rows[size:]
        return batch


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


def _events(rows: Rows, case_id: str) -> list[EventRecord]:
    return [
        EventRecord(**{**e, "data": parse_json(e["data"])}) for e in rows.events.get(case_id, [])
    ]


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


def _case_tuple(case: CaseRecord) -> tuple[Any, ...]:
    """A case as a snapshot streams it: times as canonical text, JSON decoded."""
    return tuple(
        iso(v) if name in CASE_TIMES else copy.deepcopy(v) if isinstance(v, Mapping) else v
        for name in CASE_FIELDS
        for v in (getattr(case, name),)
    )


def _event_tuple(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """An event as a snapshot streams it: times as canonical text, data as stored."""
    return tuple(iso(event[n]) if n in EVENT_TIMES else event[n] for n in EVENT_FIELDS)


def _of_kind(mail: Mail, kind: str | None) -> bool:
    """Whether the row is of ``kind``: any (``None``), ``mail`` (every mail kind), or one
    kind exactly."""
    if kind is None:
        return True
    if kind == "mail":
        return mail.kind not in (WEBHOOK_KIND, NOTIFY_KIND)
    return mail.kind == kind


def _leased(rows: Rows, mail_ids: Sequence[int], token: str) -> list[Mail]:
    """The rows of ``mail_ids`` still sending under the lease ``token``."""
    return [
        m for i in mail_ids for m in (rows.outbox.get(i),)
        if m is not None and m.status == "sending" and m.lease_token == token
    ]  # fmt: skip


def _attaches(data: Any, digest: str) -> bool:
    return isinstance(data, dict) and data.get("digest") == digest


def _utc_times(record: Any) -> Any:
    """A record with its times checked aware and put in UTC."""
    times = {
        name: as_utc(value, name)
        for name, value in vars(record).items()
        if isinstance(value, datetime)
    }
    return replace(record, **times)


if TYPE_CHECKING:

    def _is_a_store() -> Store:
        return MemoryStore()  # mypy holds MemoryStore to the port here
