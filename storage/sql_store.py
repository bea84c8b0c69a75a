"""The storage port on SQLite and PostgreSQL, through SQLAlchemy and the driver's cursor.

The hot path of a transition (:mod:`casework.storage.transition_sql`,
:mod:`casework.storage.deadline_sql`) is plain SQL on a borrowed driver connection and
needs no table classes; the other reads (:mod:`casework.storage.case_store`,
:mod:`casework.storage.outbox_store`) are SQLAlchemy Core over the tables and are
imported when first asked for, so a process that only fires events never loads them.
Every dialect difference comes from :mod:`casework.storage.dialect`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from casework.storage.database import read_transaction, write_transaction
from casework.storage.deadline_sql import DeadlineSQL
from casework.storage.port import DeadlineKey, Listener

if TYPE_CHECKING:
    from casework.storage.checkpoint_sql import Heads
    from casework.storage.port import Store
from casework.storage.personal_sql import PersonalSQL
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
from casework.storage.transition_sql import TransitionSQL


class SqlStore:
    """:class:`casework.storage.port.Store` on one SQLAlchemy engine. Safe to share between
    threads."""

    def __init__(self, db: Engine) -> None:
        self.db = db
        self._sql = TransitionSQL(db)
        self._deadlines = DeadlineSQL(self._sql)
        self._personal = PersonalSQL(self._sql)
        self.skip_locked = bool(self._sql.dialect.skip_locked)

    # -- transactions and lifetime ----------------------------------------------------

    def transaction(self, connection: Connection | None = None) -> AbstractContextManager[Any]:
        return self._sql.transaction() if connection is None else self._sql.joined(connection)

    def unjoinable(self, connection: Connection) -> str | None:
        return self._sql.unjoinable(connection)

    def close(self) -> None:
        self._sql.close()

    # -- cases and events, inside a transaction ---------------------------------------

    def insert_case(self, cursor: Any, case: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        self._sql.insert_case(cursor, case, event)

    def load_case(self, cursor: Any, case_id: str) -> CaseRecord | None:
        return self._sql.load_case(cursor, case_id)

    def load_cases(self, cursor: Any, case_ids: list[str]) -> dict[str, CaseRecord]:
        return self._sql.load_cases(cursor, case_ids)

    def append(
        self, cursor: Any, event: Mapping[str, Any], update: Mapping[str, Any], *, expected: int
    ) -> bool:
        return self._sql.append(cursor, event, update, expected=expected)

    def append_many(
        self,
        cursor: Any,
        events: Sequence[Mapping[str, Any]],
        updates: Sequence[tuple[Mapping[str, Any], int]],
    ) -> None:
        self._sql.append_many(cursor, events, updates)

    # -- SLA policies, deadlines and the mail queue, inside a transaction ------------

    def store_policy(
        self, cursor: Any, version: str, name: str, document: Mapping[str, Any], now: datetime
    ) -> None:
        self._deadlines.store_policy(cursor, version, name, document, now)

    def plan(self, cursor: Any, case_id: str, key: DeadlineKey, due_at: datetime) -> None:
        self._deadlines.plan(cursor, case_id, key, due_at)

    def cancel(self, cursor: Any, case_id: str, key: DeadlineKey) -> None:
        self._deadlines.cancel(cursor, case_id, key)

    def plan_many(self, cursor: Any, rows: list[tuple[str, DeadlineKey, datetime]]) -> None:
        self._deadlines.plan_many(cursor, rows)

    def cancel_many(self, cursor: Any, rows: list[tuple[str, DeadlineKey]]) -> None:
        self._deadlines.cancel_many(cursor, rows)

    def announce(self, cursor: Any, due_at: datetime) -> None:
        if not self._sql.sqlite:
            from casework.storage.notify import NOTIFY, channel_of

            cursor.execute(NOTIFY, (channel_of(self.db), due_at.isoformat()))

    def listen(
        self, heard: Callable[[datetime], None], failed: Callable[[Exception], None]
    ) -> Listener | None:
        if self._sql.sqlite:
            return None
        import os

        from casework.storage.database import is_pooled
        from casework.storage.notify import PlannedListener, channel_of, conninfo

        dsn = os.environ.get("CASEWORK_LISTEN_DATABASE_URL")
        if not dsn and is_pooled(self.db):
            return None  # a bouncer cannot keep a LISTEN: the safety poll finds them
        dsn = dsn or conninfo(self.db.url)
        dsn = dsn.replace("postgresql+psycopg://", "postgresql://")
        return PlannedListener(dsn, heard, failed, channel_of(self.db)).start()

    def claim_due(self, cursor: Any, now: datetime, limit: int) -> list[DueDeadline]:
        return self._deadlines.claim(cursor, now, limit)

    def unclaim(self, cursor: Any, rows: list[tuple[str, datetime, int]]) -> None:
        self._deadlines.unclaim(cursor, rows)

    def queue_mails(self, cursor: Any, mails: Sequence[Mapping[str, Any]]) -> None:
        self._deadlines.queue_mails(cursor, mails)

    # -- personal data, inside a transaction ------------------------------------------

    def subject_for(
        self, cursor: Any, customer: str, new: tuple[str, str], now: datetime
    ) -> tuple[str, str]:
        return self._personal.subject_for(cursor, customer, new, now)

    def put_personal(
        self, cursor: Any, case_id: str, subject_id: str, values: Mapping[str, str]
    ) -> None:
        self._personal.put(cursor, case_id, subject_id, values)

    def subjects_named(self, cursor: Any, customer: str) -> list[str]:
        return self._personal.subjects_named(cursor, customer)

    def personal_of(self, cursor: Any, subjects: Sequence[str]) -> dict[str, dict[str, str]]:
        return self._personal.values_of(cursor, subjects)

    def erase_personal(
        self, cursor: Any, subjects: Sequence[str], cases: Sequence[str], values: Sequence[str],
        now: datetime,
    ) -> None:  # fmt: skip
        self._personal.erase(cursor, subjects, cases, values, now)

    def expunge(self) -> str:
        from casework.storage.personal_sql import expunge

        return expunge(self.db)

    def compaction_pending(self) -> datetime | None:
        from casework.storage.personal_sql import compaction_pending

        return compaction_pending(self.db)

    def personal_rows(
        self, case_id: str | None
    ) -> tuple[list[tuple[Any, ...]], dict[str, dict[str, tuple[str, str]]]]:
        from casework.storage.personal_sql import personal_rows

        with read_transaction(self.db) as conn:
            return personal_rows(conn, case_id)

    def replication(self) -> dict[str, Any] | None:
        from casework.storage.replication import replication

        with read_transaction(self.db) as conn:
            return replication(conn)

    def resting_customers(self, resting: Sequence[str], before: datetime) -> list[str]:
        from casework.storage.personal_sql import resting_customers

        with read_transaction(self.db) as conn:
            return resting_customers(conn, resting, before)

    # -- reads, each in its own snapshot ---------------------------------------------

    def case(self, case_id: str) -> CaseRecord | None:
        return self._sql.read_case(case_id)

    def cases(
        self, query: CaseQuery | None = None, *, limit: int | None = None
    ) -> list[CaseRecord]:
        from casework.storage import case_store

        with read_transaction(self.db) as conn:
            return case_store.list_cases(conn, query, limit=limit)

    def cases_by_due(
        self, query: CaseQuery, limit: int
    ) -> list[tuple[CaseRecord, datetime | None]]:
        from casework.storage import case_store

        with read_transaction(self.db) as conn:
            return case_store.cases_by_due(conn, query, limit)

    def count_cases(self, query: CaseQuery) -> int:
        from casework.storage import case_store

        with read_transaction(self.db) as conn:
            return case_store.count_cases(conn, query)

    def find_cases(
        self, asked: str, limit: int, branches: Sequence[str] | None = None
    ) -> list[CaseRecord]:
        from casework.storage import case_search

        with read_transaction(self.db) as conn:
            return case_search.find_cases(conn, asked, limit, branches)

    def ids_starting(self, prefix: str, limit: int, branch: str | None = None) -> list[str]:
        from casework.storage import case_store

        with read_transaction(self.db) as conn:
            return case_store.ids_starting(conn, prefix, limit, branch)

    def case_with_events(self, case_id: str) -> tuple[CaseRecord | None, list[EventRecord]]:
        return self._sql.read_case_with_events(case_id)

    def cases_with_events(
        self, event_ids: Sequence[str], case_ids: Sequence[str]
    ) -> tuple[dict[str, list[EventRecord]], dict[str, CaseRecord]]:
        from casework.storage import case_store

        with read_transaction(self.db) as conn:
            events = case_store.events_of_cases(conn, event_ids)
            return events, case_store.load_cases(conn, case_ids)

    def stored_policies(self) -> dict[str, Any]:
        from casework.storage import case_store

        with read_transaction(self.db) as conn:
            return case_store.stored_policies(conn)

    def next_due(self) -> datetime | None:
        from casework.storage import case_store

        with read_transaction(self.db) as conn:
            return case_store.next_due(conn)

    def server_time(self) -> datetime | None:
        from casework.storage.server_clock import server_time

        return server_time(self.db)

    def pending_count(self) -> int:
        from casework.storage import case_store

        with read_transaction(self.db) as conn:
            return case_store.pending_count(conn)

    def late_candidates(self, now: datetime) -> list[CaseRecord]:
        from casework.storage import case_store

        with read_transaction(self.db) as conn:
            return case_store.late_candidates(conn, now)

    def received_between(
        self, start: datetime, end: datetime, event_names: Sequence[str]
    ) -> tuple[list[CaseRecord], dict[str, list[Any]]]:
        from casework.storage import case_store

        with read_transaction(self.db) as conn:
            return case_store.received_between(conn, start, end, event_names)

    # -- the whole history, for auditors ---------------------------------------------

    def snapshot(
        self,
        case_ids: Sequence[str] | None = None,
        id_range: tuple[str | None, str | None] = (None, None),
        received: tuple[datetime, datetime] | None = None,
    ) -> AbstractContextManager[Streams]:
        from casework.storage.snapshot import history_snapshot

        return history_snapshot(self.db, case_ids, id_range, received)

    def middle_case_id(self) -> str | None:
        from casework.storage.snapshot import middle_case_id

        return middle_case_id(self.db)

    def export_rows(
        self,
        case_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> AbstractContextManager[Iterator[tuple[Any, ...]]]:
        from casework.storage.snapshot import export_rows

        return export_rows(self.db, case_id, since, until)

    def case_heads(self, at: datetime) -> AbstractContextManager[Heads]:
        from casework.storage.checkpoint_sql import case_heads

        return case_heads(self.db, at)

    def database_id(self) -> str | None:
        from casework.storage.checkpoint_sql import database_id

        with read_transaction(self.db) as conn:
            return database_id(conn)

    # -- the outbox's delivery side ----------------------------------------------------

    def claim_mails(
        self,
        *,
        due_by: datetime,
        lease_until: datetime,
        token: str,
        limit: int,
        hold_until: Callable[[OutboxMail], datetime | None],
        kind: str = "mail",
    ) -> tuple[list[OutboxMail], int]:
        from casework.storage import outbox_store

        with write_transaction(self.db) as conn:
            claimed = outbox_store.claim_mails(
                conn,
                due_by=due_by,
                lease_until=lease_until,
                token=token,
                limit=limit,
                skip_locked=self.skip_locked,
                kind=kind,
            )
            ready, held = [], 0
            for mail in claimed:
                opens = hold_until(mail)
                if opens is None:
                    ready.append(mail)
                else:
                    held += outbox_store.release_mails(conn, [mail.id], token, at=opens, hold=True)
        return ready, held

    def release_mails(self, mail_ids: Sequence[int], token: str, at: datetime) -> int:
        from casework.storage import outbox_store

        with write_transaction(self.db) as conn:
            return outbox_store.release_mails(conn, mail_ids, token, at=at, hold=False)

    def mark_sent(
        self, accepted: Sequence[tuple[int, str, str | None]], token: str, at: datetime
    ) -> int:
        from casework.storage import outbox_store

        with write_transaction(self.db) as conn:
            return outbox_store.mark_sent(conn, accepted, token, at)

    def mark_failed(
        self,
        retry: Sequence[tuple[int, datetime]],
        dead: Sequence[int],
        token: str,
        *,
        error: str,
        buried: str,
    ) -> tuple[int, int]:
        from casework.storage import outbox_store

        with write_transaction(self.db) as conn:
            retried = sum(
                outbox_store.retry_later(conn, [mail_id], token, at=at, error=error)
                for mail_id, at in retry
            )
            died = outbox_store.bury(conn, dead, token, error=buried) if dead else 0
        return retried, died

    def requeue(self, mail_id: int, now: datetime) -> tuple[OutboxMail | None, OutboxMail | None]:
        from casework.storage import outbox_store

        with write_transaction(self.db) as conn:
            mail = outbox_store.requeue(conn, mail_id, now)
            return mail, (None if mail is not None else outbox_store.load_mail(conn, mail_id))

    def requeue_all(self, status: str, now: datetime, kind: str | None = None) -> int:
        from casework.storage import outbox_store

        with write_transaction(self.db) as conn:
            return outbox_store.requeue_all(conn, status, now, kind)

    def mails(
        self,
        *,
        status: str | None = None,
        limit: int | None = None,
        kind: str | None = None,
        case_id: str | None = None,
        branch: str | Sequence[str] | None = None,
        mail_id: int | None = None,
    ) -> list[OutboxMail]:
        from casework.storage import outbox_store

        with read_transaction(self.db) as conn:
            return outbox_store.list_mails(
                conn, status=status, limit=limit, kind=kind, case_id=case_id, branch=branch,
                mail_id=mail_id,
            )  # fmt: skip

    def mail_counts(self, kind: str | None = None) -> dict[str, int]:
        from casework.storage import outbox_store

        with read_transaction(self.db) as conn:
            return outbox_store.count_by_status(conn, kind)

    def next_attempt(self) -> datetime | None:
        from casework.storage import outbox_store

        with read_transaction(self.db) as conn:
            return outbox_store.next_attempt(conn)

    # -- who may use the HTTP API, and the answers it repeats --------------------------

    def add_token(self, token: TokenRecord, secret_hash: str) -> None:
        from casework.storage import access_store

        with write_transaction(self.db) as conn:
            access_store.add_token(conn, token, secret_hash)

    def token_by_hash(self, secret_hash: str) -> TokenRecord | None:
        from casework.storage import access_store

        with read_transaction(self.db) as conn:
            return access_store.token_by_hash(conn, secret_hash)

    def tokens(self) -> list[TokenRecord]:
        from casework.storage import access_store

        with read_transaction(self.db) as conn:
            return access_store.list_tokens(conn)

    def revoke_token(self, token_id: str, at: datetime) -> TokenRecord | None:
        from casework.storage import access_store

        with write_transaction(self.db) as conn:
            return access_store.revoke_token(conn, token_id, at)

    def recall(self, token_id: str, key: str) -> Remembered | None:
        from casework.storage import access_store

        with read_transaction(self.db) as conn:
            return access_store.recall(conn, token_id, key)

    def remember(self, token_id: str, key: str, answer: Remembered) -> bool:
        from sqlalchemy.exc import IntegrityError

        from casework.storage import access_store

        try:
            with write_transaction(self.db) as conn:
                access_store.remember(conn, token_id, key, answer)
        except IntegrityError:
            return False
        return True

    def take_over(self, token_id: str, key: str, held_since: datetime, now: datetime) -> bool:
        from casework.storage import access_store

        with write_transaction(self.db) as conn:
            return access_store.take_over(conn, token_id, key, held_since, now)

    def forget_before(self, moment: datetime) -> int:
        from casework.storage import access_store

        with write_transaction(self.db) as conn:
            return access_store.forget_before(conn, moment)

    def settle(self, token_id: str, key: str, answer: Remembered) -> None:
        from casework.storage import access_store

        with write_transaction(self.db) as conn:
            access_store.settle(conn, token_id, key, answer)

    def forget(self, token_id: str, key: str) -> None:
        from casework.storage import access_store

        with write_transaction(self.db) as conn:
            access_store.forget(conn, token_id, key)

    def add_session(
        self,
        secret_hash: str,
        token_id: str,
        csrf: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        from casework.storage import access_store

        with write_transaction(self.db) as conn:
            access_store.add_session(conn, secret_hash, token_id, csrf, created_at, expires_at)

    def session(self, secret_hash: str) -> SessionRecord | None:
        from casework.storage import access_store

        with read_transaction(self.db) as conn:
            return access_store.session_by_hash(conn, secret_hash)

    def drop_session(self, secret_hash: str, now: datetime) -> None:
        from casework.storage import access_store

        with write_transaction(self.db) as conn:
            access_store.drop_session(conn, secret_hash, before=now)

    # -- webhook subscriptions, worker heartbeats, figures -----------------------------

    def webhook_targets(self, cursor: Any) -> list[tuple[str, str, tuple[str, ...], str | None]]:
        return self._deadlines.webhook_targets(cursor)

    def add_webhook(self, hook: WebhookRecord) -> None:
        from casework.storage import service_store

        with write_transaction(self.db) as conn:
            service_store.add_webhook(conn, hook)

    def webhooks(self, *, removed: bool = False) -> list[WebhookRecord]:
        from casework.storage import service_store

        with read_transaction(self.db) as conn:
            return service_store.list_webhooks(conn, removed=removed)

    def remove_webhook(self, hook_id: str, at: datetime) -> WebhookRecord | None:
        from casework.storage import service_store

        with write_transaction(self.db) as conn:
            return service_store.remove_webhook(conn, hook_id, at)

    def beat(self, worker: str, started_at: datetime, at: datetime) -> None:
        from casework.storage import service_store

        with write_transaction(self.db) as conn:
            service_store.beat(conn, worker, started_at, at)

    def latest_beat(self) -> Heartbeat | None:
        from casework.storage import service_store

        with read_transaction(self.db) as conn:
            return service_store.latest_beat(conn)

    def figures(self, now: datetime, lag_bounds: Sequence[float]) -> Figures:
        from casework.storage import service_store

        with read_transaction(self.db) as conn:
            return service_store.figures(conn, now, lag_bounds)

    # -- partners, dispatched jobs -----------------------------------------------------

    def add_partner(self, partner: PartnerRecord) -> bool:
        from casework.storage import partner_store

        with write_transaction(self.db) as conn:
            return partner_store.add_partner(conn, partner)

    def partners(self) -> list[PartnerRecord]:
        from casework.storage import partner_store

        with read_transaction(self.db) as conn:
            return partner_store.list_partners(conn)

    def add_jobs(self, rows: Sequence[Mapping[str, Any]]) -> int:
        from casework.storage import partner_store

        with write_transaction(self.db) as conn:
            return partner_store.add_jobs(conn, rows)

    def job_counts(self, start: datetime, end: datetime) -> list[JobCount]:
        from casework.storage import partner_store

        with read_transaction(self.db) as conn:
            return partner_store.job_counts(conn, start, end)

    def named_events(
        self, start: datetime, end: datetime, names: Sequence[str]
    ) -> dict[str, list[EventRecord]]:
        from casework.storage import partner_store

        with read_transaction(self.db) as conn:
            return partner_store.named_events(conn, start, end, names)

    def put_attachment(
        self, digest: str, content: bytes, at: datetime, connection: Connection | None = None
    ) -> bool:
        from casework.storage import partner_store

        if connection is not None:
            from casework.storage.table_prefix import translated

            with translated(connection, self.db) as joined, joined.begin_nested():
                return partner_store.put_attachment(joined, digest, content, at)
        with write_transaction(self.db) as conn:
            return partner_store.put_attachment(conn, digest, content, at)

    def attachment(self, digest: str) -> bytes | None:
        from casework.storage import partner_store

        with read_transaction(self.db) as conn:
            return partner_store.attachment(conn, digest)

    def cases_attaching(self, digest: str) -> list[CaseRecord]:
        from casework.storage import partner_store

        with read_transaction(self.db) as conn:
            return partner_store.cases_attaching(conn, digest)


if TYPE_CHECKING:

    def _is_a_store(db: Engine) -> Store:
        return SqlStore(db)  # mypy holds SqlStore to the port here
