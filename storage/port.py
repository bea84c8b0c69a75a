"""The storage port: everything the engine and its collaborators ask of storage, by role.

One interface, whatever the database, split by what is asked: ``store.cases`` (cases and
events: transitions, reads, search), ``store.deadlines`` (SLA policies, the deadline
queue), ``store.outbox`` (mails, webhook deliveries, notifications), ``store.personal``
(personal data and erasure), ``store.access`` (tokens, kept answers, console sessions),
``store.webhooks``, ``store.service`` (heartbeats, figures), ``store.partners``,
``store.attachments`` and ``store.audit`` (whole-history streams from one snapshot). The
store itself keeps only what is the whole database's: transactions, closing, its
identity and clock. :class:`casework.storage.sql_store.SqlStore` implements it on SQLite
and PostgreSQL; the contract suite (``tests/contract/``) holds any implementation to it.

Writes inside :meth:`Store.transaction` take its :class:`Tx`: all of them commit together
or none does. A failed statement, read or write, raises
:class:`~casework.storage.errors.StorageError` (its subclasses
:class:`~casework.storage.errors.WriteConflict` for a duplicate key,
:class:`~casework.storage.errors.StorageBusy` when every pooled connection stays in use),
never a driver's or SQLAlchemy's own error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from casework.storage.records import (
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
from casework.storage.tx import Tx

__all__ = ["DeadlineKey", "Listener", "Store", "Tx"]

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from casework.storage.checkpoint_sql import Heads

DeadlineKey = tuple[str, int, int]
"""A deadline of a case: (clock, cycle, level)."""


class Listener(Protocol):
    """Hears other processes' deadline announcements until stopped."""

    listening: threading.Event
    """Set while its connection listens."""

    def stop(self) -> None:
        """Stop hearing."""
        ...


class CaseLog(Protocol):
    """``store.cases``: cases and their events; transitions, reads and search."""

    def insert(self, tx: Tx, case: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """A new case row with its opening event (:class:`WriteConflict` if the id is taken)."""
        ...

    def load(self, tx: Tx, case_id: str) -> CaseRecord | None:
        """The case, locked against other writers until the transaction ends."""
        ...

    def load_many(self, tx: Tx, case_ids: list[str]) -> dict[str, CaseRecord]:
        """Several cases, locked in id order."""
        ...

    def append(
        self, tx: Tx, event: Mapping[str, Any], update: Mapping[str, Any], *, expected: int
    ) -> bool:
        """Append an event and move its case on, if the case is still at version
        ``expected``. ``False``: it has moved on; the caller must end the transaction
        with an error, which rolls the event back. A store that sends the statement
        without waiting for it (PostgreSQL's pipelined transaction) answers ``True`` and
        learns it at the commit instead, which it refuses with :class:`WriteConflict`."""
        ...

    def append_many(
        self,
        tx: Tx,
        events: Sequence[Mapping[str, Any]],
        updates: Sequence[tuple[Mapping[str, Any], int]],
    ) -> None:
        """Append several events and case updates (each with its expected version)."""
        ...

    def get(self, case_id: str) -> CaseRecord | None:
        """The case as it is now."""
        ...

    def matching(
        self, query: CaseQuery | None = None, *, limit: int | None = None
    ) -> list[CaseRecord]:
        """Cases in the order they were received (then by id) that match ``query``."""
        ...

    def by_due(self, query: CaseQuery, limit: int) -> list[tuple[CaseRecord, datetime | None]]:
        """Cases that match ``query``, the next pending deadline first (those without
        one last), at most ``limit``, each with that deadline."""
        ...

    def count(self, query: CaseQuery) -> int:
        """How many cases match ``query``."""
        ...

    def find(
        self, asked: str, limit: int, branches: Sequence[str] | None = None
    ) -> list[CaseRecord]:
        """Cases that ``asked`` names: an id prefix, a customer, a phone or contact, a
        serial or order number (:mod:`casework.storage.case_search`); of ``branches`` only if
        given, the latest received first."""
        ...

    def ids_starting(self, prefix: str, limit: int, branch: str | None = None) -> list[str]:
        """Up to ``limit`` case ids that start with ``prefix`` (of ``branch``'s cases only,
        if given), in order."""
        ...

    def with_events(self, case_id: str) -> tuple[CaseRecord | None, list[EventRecord]]:
        """The case and its events, oldest first, read together."""
        ...

    def events_and_cases(
        self, event_ids: Sequence[str], case_ids: Sequence[str]
    ) -> tuple[dict[str, list[EventRecord]], dict[str, CaseRecord]]:
        """The events of the cases ``event_ids`` and the cases ``case_ids``, read together."""
        ...

    def late_candidates(self, now: datetime) -> list[CaseRecord]:
        """The cases that can be past an SLA target at ``now``."""
        ...

    def received_between(
        self, start: datetime, end: datetime, event_names: Sequence[str]
    ) -> tuple[list[CaseRecord], dict[str, list[Any]]]:
        """Cases received in ``[start, end)`` and their events of the names given."""
        ...

    def named_events(
        self, start: datetime, end: datetime, names: Sequence[str]
    ) -> dict[str, list[EventRecord]]:
        """Of the cases with such an event in ``[start, end)``, all their events of those
        names, by case id."""
        ...


class Deadlines(Protocol):
    """``store.deadlines``: SLA policies, the deadline queue and its wake-ups."""

    def store_policy(
        self, tx: Tx, version: str, name: str, document: Mapping[str, Any], now: datetime
    ) -> None:
        """Keep a policy document under its version (once; a stored one stays)."""
        ...

    def policies(self) -> dict[str, Any]:
        """Every stored SLA policy document by version."""
        ...

    def plan(self, tx: Tx, case_id: str, key: DeadlineKey, due_at: datetime) -> None:
        """Make the deadline pending at ``due_at`` (unless it has fired)."""
        ...

    def cancel(self, tx: Tx, case_id: str, key: DeadlineKey) -> None:
        """Cancel the deadline if it is pending."""
        ...

    def plan_many(self, tx: Tx, rows: list[tuple[str, DeadlineKey, datetime]]) -> None:
        """:meth:`plan` for several (case id, key, due at)."""
        ...

    def cancel_many(self, tx: Tx, rows: list[tuple[str, DeadlineKey]]) -> None:
        """:meth:`cancel` for several (case id, key)."""
        ...

    def claim(self, tx: Tx, now: datetime, limit: int) -> list[DueDeadline]:
        """Mark up to ``limit`` deadlines due at ``now`` fired, earliest first, skipping
        those another transaction has claimed; returns them."""
        ...

    def unclaim(self, tx: Tx, rows: list[tuple[str, datetime, int]]) -> None:
        """Put claimed deadlines back: (status, due at, deadline id)."""
        ...

    def next_due(self) -> datetime | None:
        """When the earliest pending deadline falls due."""
        ...

    def pending_count(self) -> int:
        """How many deadlines are pending."""
        ...

    def announce(self, tx: Tx, due_at: datetime) -> None:
        """Tell other processes, at commit, that a deadline falls due at ``due_at``."""
        ...

    def listen(
        self, heard: Callable[[datetime], None], failed: Callable[[Exception], None]
    ) -> Listener | None:
        """Start hearing other processes' announcements (``None``: the database has no
        way to tell, and the safety poll finds them)."""
        ...


class Outbox(Protocol):
    """``store.outbox``: mails, webhook deliveries and customers' notifications waiting
    to be sent, and their delivery."""

    def queue(self, tx: Tx, mails: Sequence[Mapping[str, Any]]) -> None:
        """Queue outbox rows; one whose dedupe key is queued already is left out."""
        ...

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
        """Claim due rows of ``kind`` (``mail`` or ``webhook``) under ``token`` until
        ``lease_until``; in the same transaction, hold back each one ``hold_until`` gives
        a time. (Rows to send, how many held.)"""
        ...

    def release(self, mail_ids: Sequence[int], token: str, at: datetime) -> int:
        """Give claimed rows back unsent, due at ``at``."""
        ...

    def mark_sent(
        self, accepted: Sequence[tuple[int, str, str | None]], token: str, at: datetime
    ) -> int:
        """Record (row id, Message-ID, note) as sent, under the lease ``token``."""
        ...

    def mark_failed(
        self,
        retry: Sequence[tuple[int, datetime]],
        dead: Sequence[int],
        token: str,
        *,
        error: str,
        buried: str,
    ) -> tuple[int, int]:
        """Record a failed sending: (row id, next attempt) to retry, ids that die."""
        ...

    def requeue(self, mail_id: int, now: datetime) -> tuple[OutboxMail | None, OutboxMail | None]:
        """Queue a dead letter again: (the row queued, or ``None`` and the row as found)."""
        ...

    def requeue_all(self, status: str, now: datetime, kind: str | None = None) -> int:
        """Queue every row of ``status`` (and ``kind``, if given) at once."""
        ...

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
        """Outbox rows by id, optionally of one status, kind (``mail``, ``webhook``, or one
        kind exactly), case, branch (of the case; or one of several) and id."""
        ...

    def counts(self, kind: str | None = None) -> dict[str, int]:
        """How many outbox rows (of ``kind``, if given) have each status."""
        ...

    def next_attempt(self, kind: str | None = None) -> datetime | None:
        """When the next row of ``kind`` falls due (``kind`` as :meth:`claim` takes it;
        by default any row)."""
        ...


class PersonalData(Protocol):
    """``store.personal``: personal values apart from the history, each customer's
    secret, and their erasure."""

    def subject_for(
        self, tx: Tx, customer: str, new: tuple[str, str], now: datetime
    ) -> tuple[str, str]:
        """The subject (id, secret) of the customer; ``new`` stored if they have none."""
        ...

    def put(self, tx: Tx, case_id: str, subject_id: str, values: Mapping[str, str]) -> None:
        """Keep a case's personal values by field."""
        ...

    def subjects_named(self, tx: Tx, customer: str) -> list[str]:
        """Every subject whose cases name the customer."""
        ...

    def values_of(self, tx: Tx, subjects: Sequence[str]) -> dict[str, dict[str, str]]:
        """The subjects' personal values: case id -> field -> value."""
        ...

    def erase(
        self, tx: Tx, subjects: Sequence[str], cases: Sequence[str], values: Sequence[str],
        now: datetime,
    ) -> None:  # fmt: skip
        """Delete the subjects' values and secrets; put ``[erased]`` for the values in
        the cases' mail and webhook rows and in kept API answers (where a field is an
        erased value, never where it contains one); mark the files' compaction pending."""
        ...

    def expunge(self) -> str:
        """After an erasure: leave no copy of deleted values in the database files, or,
        when a reader holds them, leave the compaction pending; says which."""
        ...

    def compaction_pending(self) -> datetime | None:
        """Since when an erasure's compaction of the database files is pending."""
        ...

    def rows(
        self, case_id: str | None
    ) -> tuple[list[tuple[Any, ...]], dict[str, dict[str, tuple[str, str]]]]:
        """For verification: each format-2 case (id, customer, contact, attributes,
        facts, its opening event's data) and its kept values (field -> value, secret)."""
        ...

    def resting_customers(self, resting: Sequence[str], before: datetime) -> list[str]:
        """Customers of format-2 cases all in ``resting`` states and without an event
        since ``before`` (and no format-1 case): who retention erases."""
        ...


class Access(Protocol):
    """``store.access``: API tokens, the answers kept for idempotency keys, console
    sessions."""

    def add_token(self, token: TokenRecord, secret_hash: str) -> None:
        """Store a token under the hash of its secret."""
        ...

    def token_by_hash(self, secret_hash: str) -> TokenRecord | None:
        """The token whose secret hashes to ``secret_hash`` (revoked ones too)."""
        ...

    def tokens(self) -> list[TokenRecord]:
        """Every token, oldest first."""
        ...

    def revoke_token(self, token_id: str, at: datetime) -> TokenRecord | None:
        """Revoke a token (its first revocation time stays); the token, if any."""
        ...

    def recall(self, token_id: str, key: str) -> Remembered | None:
        """The answer kept for an idempotency key of a token."""
        ...

    def remember(self, token_id: str, key: str, answer: Remembered) -> bool:
        """Keep an answer; ``False`` if one is kept for the key already (a race)."""
        ...

    def take_over(self, token_id: str, key: str, held_since: datetime, now: datetime) -> bool:
        """Hold a key from ``now`` if its placeholder stands as it was since
        ``held_since`` (its request died); ``False`` if another request was first."""
        ...

    def settle(self, token_id: str, key: str, answer: Remembered) -> None:
        """Replace the answer kept for a key (the final one after a placeholder)."""
        ...

    def forget(self, token_id: str, key: str) -> None:
        """Drop the answer kept for a key."""
        ...

    def forget_before(self, moment: datetime) -> int:
        """Drop the answers kept since before ``moment``."""
        ...

    def add_session(
        self,
        secret_hash: str,
        token_id: str,
        csrf: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        """Keep a console session under the hash of its cookie."""
        ...

    def session(self, secret_hash: str) -> SessionRecord | None:
        """The console session whose cookie hashes to ``secret_hash``, with its token."""
        ...

    def drop_session(self, secret_hash: str, now: datetime) -> None:
        """End a session (and drop those already ended)."""
        ...


class Webhooks(Protocol):
    """``store.webhooks``: webhook subscriptions."""

    def targets(self, tx: Tx) -> list[tuple[str, str, tuple[str, ...], str | None]]:
        """Inside a transaction: the live subscriptions, (id, url, events asked for, branch
        or none for every branch) each."""
        ...

    def add(self, hook: WebhookRecord) -> None:
        """Store a subscription."""
        ...

    def subscriptions(self, *, removed: bool = False) -> list[WebhookRecord]:
        """The live subscriptions (and the removed ones, if ``removed``), oldest first."""
        ...

    def remove(self, hook_id: str, at: datetime) -> WebhookRecord | None:
        """End a subscription; the subscription, if any by that id."""
        ...


class Service(Protocol):
    """``store.service``: workers' heartbeats and the figures ``/metrics`` publishes."""

    def beat(self, worker: str, started_at: datetime, at: datetime) -> None:
        """Record a worker's heartbeat."""
        ...

    def latest_beat(self) -> Heartbeat | None:
        """The freshest heartbeat of any worker."""
        ...

    def figures(self, now: datetime, lag_bounds: Sequence[float]) -> Figures:
        """The gauges ``/metrics`` publishes, read in one snapshot."""
        ...


class Partners(Protocol):
    """``store.partners``: service partners and the jobs dispatched to them."""

    def add(self, partner: PartnerRecord) -> bool:
        """Store a partner; ``False`` if one has that id already."""
        ...

    def registered(self) -> list[PartnerRecord]:
        """Every partner, by id."""
        ...

    def add_jobs(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Store dispatched-job rows in one transaction; how many jobs they add up to."""
        ...

    def job_counts(self, start: datetime, end: datetime) -> list[JobCount]:
        """Jobs done in ``[start, end)`` by kind, branch, category and partner."""
        ...


class Attachments(Protocol):
    """``store.attachments``: evidence files, kept once under their SHA-256 digest."""

    def put(
        self, digest: str, content: bytes, at: datetime, connection: Connection | None = None
    ) -> bool:
        """Keep an evidence file under its digest; ``False`` if kept already (inside the
        host's transaction on ``connection``, if given)."""
        ...

    def get(self, digest: str) -> bytes | None:
        """The evidence file kept under ``digest``, if any."""
        ...

    def cases(self, digest: str) -> list[CaseRecord]:
        """The cases whose history attaches the file kept under ``digest``."""
        ...


class AuditStreams(Protocol):
    """``store.audit``: the whole history streamed for auditors (verification, exports,
    checkpoints) and where the server stands in replication."""

    def snapshot(
        self,
        case_ids: Sequence[str] | None = None,
        id_range: tuple[str | None, str | None] = (None, None),
        received: tuple[datetime, datetime] | None = None,
    ) -> AbstractContextManager[Streams]:
        """Cases, events and pending deadlines streamed from one snapshot, by case id
        (all, of ``case_ids``, of ids in ``id_range``, or received in a period)."""
        ...

    def middle_case_id(self, min_events: int = 0) -> str | None:
        """The case id that splits the cases in two halves (``None`` with under two cases,
        or with fewer than ``min_events`` events)."""
        ...

    def export_rows(
        self,
        case_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> AbstractContextManager[Iterator[tuple[Any, ...]]]:
        """Every event (of one case, occurred in ``[since, until)``) with its case's
        machine and version, by case id and seq, from one snapshot."""
        ...

    def case_heads(self, at: datetime) -> AbstractContextManager[Heads]:
        """(case id, seq, hash) of each case's last event recorded by ``at``, by case id;
        the heads count the events they read."""
        ...

    def replication(self) -> dict[str, Any] | None:
        """Where the server stands in replication (:mod:`casework.storage.replication`)."""
        ...


class Store(Protocol):
    """The store by role, and what is truly the whole store's: its transactions, its
    lifetime, the database's identity and clock."""

    @property
    def cases(self) -> CaseLog:
        """Cases and events."""
        ...

    @property
    def deadlines(self) -> Deadlines:
        """SLA policies and deadlines."""
        ...

    @property
    def outbox(self) -> Outbox:
        """Deliveries waiting and sent."""
        ...

    @property
    def personal(self) -> PersonalData:
        """Personal data and erasure."""
        ...

    @property
    def access(self) -> Access:
        """Tokens, kept answers, console sessions."""
        ...

    @property
    def webhooks(self) -> Webhooks:
        """Webhook subscriptions."""
        ...

    @property
    def service(self) -> Service:
        """Heartbeats and figures."""
        ...

    @property
    def partners(self) -> Partners:
        """Partners and dispatched jobs."""
        ...

    @property
    def attachments(self) -> Attachments:
        """Evidence files."""
        ...

    @property
    def audit(self) -> AuditStreams:
        """Whole-history streams."""
        ...

    def transaction(self, connection: Connection | None = None) -> AbstractContextManager[Tx]:
        """A write transaction; its handle goes to every write inside it. Given a host's
        ``connection`` (a transaction begun on it), a savepoint inside that transaction
        instead: committed or rolled back with the host's."""
        ...

    def grouped(self) -> AbstractContextManager[Connection | None]:
        """One write transaction that several calls join by its connection (each as with
        a host's, :meth:`transaction`), committed once: durable together, or not at all.
        ``None`` where the store cannot group writes: each call then commits alone. A
        driver's failure leaves as :class:`StorageError`."""
        ...

    def unjoinable(self, connection: Connection) -> str | None:
        """Why a write cannot join ``connection``'s transaction, if it cannot."""
        ...

    def close(self) -> None:
        """Release every connection."""
        ...

    def database_id(self) -> str | None:
        """The database's identity (stable for its lifetime)."""
        ...

    def server_time(self) -> datetime | None:
        """The database server's clock now (``None`` on SQLite: the host's own)."""
        ...
