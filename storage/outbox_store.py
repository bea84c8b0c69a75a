"""The outbox's delivery side: claiming mails under a lease and recording each outcome.

A claim moves due rows to ``sending`` with a fresh lease token and sets
``next_attempt_at`` to when the lease runs out, so one index range on
``(status, next_attempt_at)`` finds both due mails and abandoned claims. Every outcome
is written ``WHERE lease_token = :token``: a sender whose lease was taken over cannot
overwrite the new holder's record. On PostgreSQL the claim skips rows another claim
has locked; on SQLite the write lock taken at ``BEGIN IMMEDIATE`` serialises claims.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, true, update

from casework.storage.chain import canonical_json
from casework.storage.notify_store import NOTIFY_KIND
from casework.storage.records import DUE_STATUSES, STATUSES, WEBHOOK_KIND, OutboxMail
from casework.storage.transition_sql import TransitionSQL
from casework.storage.tx import Tx, cursor_of

__all__ = ["DUE_STATUSES", "STATUSES", "OutboxMail"]


class SqlOutbox:
    """:class:`casework.storage.port.Outbox` on SQLite and PostgreSQL: rows queued on the
    transaction's driver cursor, delivered through SQLAlchemy Core (the table classes are
    imported by the calls that use them, so queueing loads none)."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql
        m, j = sql.dialect.mark, sql.dialect.json_mark
        self.skip_locked = bool(sql.dialect.skip_locked)
        self._queue = (
            "INSERT INTO outbox (dedupe_key, case_id, deadline_id, kind, level, recipients, "
            "body, status, attempts, next_attempt_at, created_at) "
            f"VALUES ({m}, {m}, {m}, {m}, {m}, {j}, {j}, 'pending', 0, {m}, {m}) "
            "ON CONFLICT (dedupe_key) DO NOTHING"
        )

    def queue(self, tx: Tx, mails: Sequence[Mapping[str, Any]]) -> None:
        """Queue outbox rows; a second row with the same dedupe key is ignored."""
        if not mails:
            return
        time = self.sql.dialect.time
        cursor_of(tx).executemany(
            self._queue,
            [
                (
                    mail["dedupe_key"],
                    mail["case_id"],
                    mail.get("deadline_id"),
                    mail["kind"],
                    mail["level"],
                    canonical_json(mail["recipients"]),
                    canonical_json(mail["body"]),
                    time(mail["next_attempt_at"]),
                    time(mail["created_at"]),
                )
                for mail in mails
            ],
        )

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
        """Claim due rows of ``kind`` under ``token`` until ``lease_until``; in the same
        transaction, hold back each one ``hold_until`` gives a time. (Rows to send, how
        many held.)"""
        with self.sql.writing() as conn:
            claimed = _claim(
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
                    held += _release(conn, [mail.id], token, at=opens, hold=True)
        return ready, held

    def release(self, mail_ids: Sequence[int], token: str, at: datetime) -> int:
        """Give claimed rows back unsent, due at ``at``."""
        with self.sql.writing() as conn:
            return _release(conn, mail_ids, token, at=at, hold=False)

    def mark_sent(
        self, accepted: Sequence[tuple[int, str, str | None]], token: str, at: datetime
    ) -> int:
        """Record the server's acceptance of mails given as (id, Message-ID, note) in one
        statement run for them all; how many were still held by ``token``."""
        from casework.storage.tables import outbox_table as outbox

        with self.sql.writing() as conn:
            if not accepted:
                return 0
            statement = (
                update(outbox)
                .where(
                    outbox.c.id == bindparam("mail_id"),
                    outbox.c.lease_token == token,
                    outbox.c.status == "sending",
                )
                .values(
                    status="sent",
                    sent_at=at,
                    message_id=bindparam("mid"),
                    last_error=bindparam("note"),
                    lease_token=None,
                )
            )
            params = [{"mail_id": i, "mid": mid, "note": note} for i, mid, note in accepted]
            return conn.execute(statement, params).rowcount

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
        with self.sql.writing() as conn:
            retried = sum(
                _retry_later(conn, [mail_id], token, at=at, error=error) for mail_id, at in retry
            )
            died = _bury(conn, dead, token, error=buried) if dead else 0
        return retried, died

    def requeue(self, mail_id: int, now: datetime) -> tuple[OutboxMail | None, OutboxMail | None]:
        """Queue a dead letter again: (the row queued, or ``None`` and the row as found)."""
        with self.sql.writing() as conn:
            mail = _requeue(conn, mail_id, now)
            return mail, (None if mail is not None else _load(conn, mail_id))

    def requeue_all(self, status: str, now: datetime, kind: str | None = None) -> int:
        """Make every mail of ``status`` due now: dead letters with their attempts counted
        afresh, pending ones without waiting out their backoff. How many."""
        from casework.storage.tables import outbox_table as outbox

        with self.sql.writing() as conn:
            values: dict[str, Any] = {
                "status": "pending",
                "next_attempt_at": now,
                "held_until": None,
            }
            if status == "dead":
                values["attempts"] = 0
            result = conn.execute(
                update(outbox).where(outbox.c.status == status, of_kind(kind)).values(**values)
            )
            return int(result.rowcount)

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
        """Rows by id, optionally of one status, kind (see :func:`of_kind`), case, branch
        (of the case; or one of several) and id."""
        from casework.storage.tables import cases_table as cases
        from casework.storage.tables import outbox_table as outbox

        with self.sql.reading() as conn:
            query = select(outbox).where(of_kind(kind)).order_by(outbox.c.id)
            if case_id is not None:
                query = query.where(outbox.c.case_id == case_id)
            if branch is not None:
                query = query.where(
                    outbox.c.case_id.in_(
                        select(cases.c.id).where(
                            cases.c.branch.in_(
                                [branch] if isinstance(branch, str) else list(branch)
                            )
                        )
                    )
                )
            if mail_id is not None:
                query = query.where(outbox.c.id == mail_id)
            if status is not None:
                query = query.where(outbox.c.status == status)
            if limit is not None:
                query = query.limit(limit)
            return [OutboxMail.from_row(row) for row in conn.execute(query)]

    def counts(self, kind: str | None = None) -> dict[str, int]:
        """How many rows of ``kind`` have each status (every status listed, zero included)."""
        from casework.storage.tables import outbox_table as outbox

        with self.sql.reading() as conn:
            counts = dict.fromkeys(STATUSES, 0)
            query = (
                select(outbox.c.status, func.count()).where(of_kind(kind)).group_by(outbox.c.status)
            )
            for status, count in conn.execute(query):
                counts[status] = count
            return counts

    def next_attempt(self, kind: str | None = None) -> datetime | None:
        """The earliest time a row of ``kind`` (any by default) falls due, or a claim's
        lease on one runs out, if any."""
        from casework.storage.tables import outbox_table as outbox

        with self.sql.reading() as conn:
            query = select(func.min(outbox.c.next_attempt_at)).where(
                outbox.c.status.in_(DUE_STATUSES), of_kind(kind)
            )
            value: datetime | None = conn.execute(query).scalar()
            return value


def of_kind(kind: str | None) -> Any:
    """The condition for rows of ``kind``: ``mail`` (every mail kind), any (``None``), or
    one kind exactly (``webhook``, ``notify``, ``warning``, ``escalation``)."""
    from casework.storage.tables import outbox_table as outbox

    if kind is None:
        return true()
    if kind == "mail":
        return outbox.c.kind.not_in((WEBHOOK_KIND, NOTIFY_KIND))
    return outbox.c.kind == kind


def _claim(
    conn: Connection,
    *,
    due_by: datetime,
    lease_until: datetime,
    token: str,
    limit: int,
    skip_locked: bool,
    kind: str | None = "mail",
) -> list[OutboxMail]:
    """Claim up to ``limit`` rows of ``kind`` due by ``due_by`` (oldest first) for
    ``token``.

    The claim lasts until ``lease_until``; a claim whose lease ran out is due again.
    """
    from casework.storage.tables import outbox_table as outbox

    due = (
        select(outbox.c.id)
        .where(
            outbox.c.status.in_(DUE_STATUSES),
            outbox.c.next_attempt_at <= due_by,
            of_kind(kind),
        )
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    claim = (
        update(outbox)
        .where(outbox.c.id.in_(due.scalar_subquery()))
        .values(
            status="sending",
            lease_token=token,
            next_attempt_at=lease_until,
            attempts=outbox.c.attempts + 1,
        )
        .returning(*outbox.c)
    )
    mails = [OutboxMail.from_row(row) for row in conn.execute(claim)]
    return sorted(mails, key=lambda m: m.id)


def _leased(mail_id: int, token: str) -> Any:
    from casework.storage.tables import outbox_table as outbox

    return update(outbox).where(
        outbox.c.id == mail_id, outbox.c.lease_token == token, outbox.c.status == "sending"
    )


def _release(
    conn: Connection, mail_ids: Sequence[int], token: str, *, at: datetime, hold: bool
) -> int:
    """Give claimed mails back unsent, due at ``at``; the claim counts as no attempt.

    ``hold`` marks them held for quiet hours (and later sent as a digest where several
    wait for the same recipients).
    """
    from casework.storage.tables import outbox_table as outbox

    values: dict[str, Any] = {
        "status": "held" if hold else "pending",
        "next_attempt_at": at,
        "lease_token": None,
        "attempts": outbox.c.attempts - 1,
    }
    if hold:
        values["held_until"] = at
    done = 0
    for mail_id in mail_ids:
        done += conn.execute(_leased(mail_id, token).values(**values)).rowcount
    return done


def _retry_later(
    conn: Connection, mail_ids: Sequence[int], token: str, *, at: datetime, error: str
) -> int:
    """A temporary failure: try these mails again at ``at``."""
    done = 0
    for mail_id in mail_ids:
        result = conn.execute(
            _leased(mail_id, token).values(
                status="pending", next_attempt_at=at, lease_token=None, last_error=error[:2000]
            )
        )
        done += result.rowcount
    return done


def _bury(conn: Connection, mail_ids: Sequence[int], token: str, *, error: str) -> int:
    """A permanent failure: these mails become dead letters with the server's answer."""
    done = 0
    for mail_id in mail_ids:
        result = conn.execute(
            _leased(mail_id, token).values(status="dead", lease_token=None, last_error=error[:2000])
        )
        done += result.rowcount
    return done


def _requeue(conn: Connection, mail_id: int, now: datetime) -> OutboxMail | None:
    """Send a dead letter again from now, attempts counted afresh; ``None`` if not dead."""
    from casework.storage.tables import outbox_table as outbox

    row = conn.execute(
        update(outbox)
        .where(outbox.c.id == mail_id, outbox.c.status == "dead")
        .values(status="pending", next_attempt_at=now, attempts=0, held_until=None)
        .returning(*outbox.c)
    ).first()
    return None if row is None else OutboxMail.from_row(row)


def _load(conn: Connection, mail_id: int) -> OutboxMail | None:
    """One mail by id, or ``None``."""
    from casework.storage.tables import outbox_table as outbox

    row = conn.execute(select(outbox).where(outbox.c.id == mail_id)).first()
    return None if row is None else OutboxMail.from_row(row)
