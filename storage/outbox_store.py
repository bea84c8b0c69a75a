"""The outbox's delivery side: claiming mails under a lease and recording each outcome.

A claim moves due rows to ``sending`` with a fresh lease token and sets
``next_attempt_at`` to when the lease runs out, so one index range on
``(status, next_attempt_at)`` finds both due mails and abandoned claims. Every outcome
is written ``WHERE lease_token = :token``: a sender whose lease was taken over cannot
overwrite the new holder's record. On PostgreSQL the claim skips rows another claim
has locked; on SQLite the write lock taken at ``BEGIN IMMEDIATE`` serialises claims.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, true, update

from casework.storage.notify_store import NOTIFY_KIND
from casework.storage.records import DUE_STATUSES, STATUSES, WEBHOOK_KIND, OutboxMail
from casework.storage.tables import cases_table as cases
from casework.storage.tables import outbox_table as outbox

__all__ = ["DUE_STATUSES", "STATUSES", "OutboxMail"]


def of_kind(kind: str | None) -> Any:
    """The condition for rows of ``kind``: ``mail`` (every mail kind), any (``None``), or
    one kind exactly (``webhook``, ``notify``, ``warning``, ``escalation``)."""
    if kind is None:
        return true()
    if kind == "mail":
        return outbox.c.kind.not_in((WEBHOOK_KIND, NOTIFY_KIND))
    return outbox.c.kind == kind


def claim_mails(
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
    return update(outbox).where(
        outbox.c.id == mail_id, outbox.c.lease_token == token, outbox.c.status == "sending"
    )


def release_mails(
    conn: Connection, mail_ids: Sequence[int], token: str, *, at: datetime, hold: bool
) -> int:
    """Give claimed mails back unsent, due at ``at``; the claim counts as no attempt.

    ``hold`` marks them held for quiet hours (and later sent as a digest where several
    wait for the same recipients).
    """
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


def mark_sent(
    conn: Connection, accepted: Sequence[tuple[int, str, str | None]], token: str, at: datetime
) -> int:
    """Record the server's acceptance of mails given as (id, Message-ID, note) in one
    statement run for them all; how many were still held by ``token``."""
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


def retry_later(
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


def bury(conn: Connection, mail_ids: Sequence[int], token: str, *, error: str) -> int:
    """A permanent failure: these mails become dead letters with the server's answer."""
    done = 0
    for mail_id in mail_ids:
        result = conn.execute(
            _leased(mail_id, token).values(status="dead", lease_token=None, last_error=error[:2000])
        )
        done += result.rowcount
    return done


def requeue(conn: Connection, mail_id: int, now: datetime) -> OutboxMail | None:
    """Send a dead letter again from now, attempts counted afresh; ``None`` if not dead."""
    row = conn.execute(
        update(outbox)
        .where(outbox.c.id == mail_id, outbox.c.status == "dead")
        .values(status="pending", next_attempt_at=now, attempts=0, held_until=None)
        .returning(*outbox.c)
    ).first()
    return None if row is None else OutboxMail.from_row(row)


def requeue_all(conn: Connection, status: str, now: datetime, kind: str | None = None) -> int:
    """Make every mail of ``status`` due now: dead letters with their attempts counted
    afresh, pending ones without waiting out their backoff. How many."""
    values: dict[str, Any] = {"status": "pending", "next_attempt_at": now, "held_until": None}
    if status == "dead":
        values["attempts"] = 0
    result = conn.execute(
        update(outbox).where(outbox.c.status == status, of_kind(kind)).values(**values)
    )
    return int(result.rowcount)


def load_mail(conn: Connection, mail_id: int) -> OutboxMail | None:
    """One mail by id, or ``None``."""
    row = conn.execute(select(outbox).where(outbox.c.id == mail_id)).first()
    return None if row is None else OutboxMail.from_row(row)


def list_mails(
    conn: Connection,
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
    query = select(outbox).where(of_kind(kind)).order_by(outbox.c.id)
    if case_id is not None:
        query = query.where(outbox.c.case_id == case_id)
    if branch is not None:
        query = query.where(
            outbox.c.case_id.in_(
                select(cases.c.id).where(
                    cases.c.branch.in_([branch] if isinstance(branch, str) else list(branch))
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


def count_by_status(conn: Connection, kind: str | None = None) -> dict[str, int]:
    """How many rows of ``kind`` have each status (every status listed, zero included)."""
    counts = dict.fromkeys(STATUSES, 0)
    query = select(outbox.c.status, func.count()).where(of_kind(kind)).group_by(outbox.c.status)
    for status, count in conn.execute(query):
        counts[status] = count
    return counts


def next_attempt(conn: Connection) -> datetime | None:
    """The earliest time a mail falls due (or a claim's lease runs out), if any."""
    query = select(func.min(outbox.c.next_attempt_at)).where(outbox.c.status.in_(DUE_STATUSES))
    value: datetime | None = conn.execute(query).scalar()
    return value
