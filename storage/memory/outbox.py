"""``store.outbox`` in memory: mails, webhook deliveries and notifications, their leases."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from casework.storage.errors import WriteConflict
from casework.storage.memory.rows import Mail, Rows
from casework.storage.memory.tx import Role, rows_of
from casework.storage.notify_store import NOTIFY_KIND
from casework.storage.records import DUE_STATUSES, STATUSES, WEBHOOK_KIND, OutboxMail
from casework.storage.timestamps import as_utc
from casework.storage.tx import Tx


class MemoryOutbox(Role):
    """``store.outbox`` in memory: mails, webhook deliveries and notifications, and their leases."""

    def queue(self, tx: Tx, mails: Sequence[Mapping[str, Any]]) -> None:
        cursor = rows_of(tx)
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

    def next_attempt(self, kind: str | None = None) -> datetime | None:
        return min(
            (
                m.next_attempt_at
                for m in self._rows.outbox.values()
                if m.status in DUE_STATUSES and _of_kind(m, kind)
            ),
            default=None,
        )


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
