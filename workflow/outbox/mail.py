"""The outbox as the delivery side sees it: claim due mails, record what the server said.

A claim takes due mails under a lease. Mails of a level with quiet hours are held
back, inside the same transaction, until their calendar opens; when released together
for the same recipients they go out as one digest. The outcome of a sending is
recorded only under the claim's lease token: ``sent`` after the server accepted it,
``pending`` again with exponential backoff and jitter after a temporary failure, and
``dead`` (a dead letter with the server's answer) after a permanent one or when the
attempts run out.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from casework.storage.records import STATUSES, WEBHOOK_KIND
from casework.storage.records import CaseRecord as CaseRecord  # the rows delivery reads:
from casework.storage.records import EventRecord as EventRecord  # the scheduler takes them
from casework.storage.records import OutboxMail as OutboxMail  # from here, not from storage
from casework.storage.records import WebhookRecord as WebhookRecord
from casework.workflow.errors import InvalidInput, MailNotFound
from casework.workflow.mail.render import REPORT_KIND, MailWriter
from casework.workflow.storage_boundary import at_storage_boundary

if TYPE_CHECKING:
    from casework.workflow.context import Context


RETRYABLE = ("dead", "pending")
"""Statuses ``retry_all`` takes: dead letters, and mails waiting out a backoff."""


def retry_wait(
    attempts: int, backoff_s: float, max_backoff_s: float, rng: random.Random
) -> timedelta:
    """The wait after the ``attempts``-th failure of a sending: doubling from
    ``backoff_s`` up to ``max_backoff_s``, jittered (half to all of it)."""
    base = min(max_backoff_s, backoff_s * 2 ** (attempts - 1))
    return timedelta(seconds=base * rng.uniform(0.5, 1.0))


class Retries(Protocol):
    """How a kind of outbox row is retried: ``[mail]``'s or ``[webhooks]``' numbers."""

    @property
    def max_attempts(self) -> int:
        """Attempts before a temporary failure becomes a dead letter."""

    @property
    def backoff_s(self) -> float:
        """The first wait, doubled each attempt (with jitter)."""

    @property
    def max_backoff_s(self) -> float:
        """The longest wait."""

    @property
    def lease_s(self) -> float:
        """How long a claim holds its rows."""


@dataclass(frozen=True)
class Claim:
    """Mails claimed under one lease token: those to send now and how many were held."""

    token: str
    mails: tuple[OutboxMail, ...]
    held: int
    lease_until: datetime


@dataclass(frozen=True)
class Accepted:
    """Mails the server accepted as one message: its ``Message-ID`` and any refusals."""

    mails: tuple[OutboxMail, ...]
    message_id: str
    note: str | None = None


class Outbox:
    """Delivery bookkeeping of one engine's outbox, for mails or (``kind="webhook"``)
    webhook deliveries. Safe to share between threads."""

    def __init__(
        self, context: Context, *, rng: random.Random | None = None, kind: str = "mail"
    ) -> None:
        self.context = context
        self.store = context.store
        self.kind = kind
        self.settings: Retries = (
            context.settings.webhooks if kind == WEBHOOK_KIND else context.settings.mail
        )
        self.writer = MailWriter(context.settings.mail)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets

    @at_storage_boundary
    def claim(self, token: str, *, limit: int, due_by: datetime | None = None) -> Claim:
        """Claim up to ``limit`` mails due by ``due_by`` (default now); hold quiet-hour ones."""
        now = self.context.clock.now()
        lease_until = now + timedelta(seconds=self.settings.lease_s)
        calendars = self.context.policies.calendars()

        def hold_until(mail: OutboxMail) -> datetime | None:
            if mail.kind in (WEBHOOK_KIND, REPORT_KIND):  # a report is never held
                return None
            name = self.writer.settings.quiet_calendar(mail.level)
            calendar = calendars.get(name) if name else None
            opens = calendar.opens_at(now) if calendar is not None else now
            return opens if opens > now else None

        ready, held = self.store.outbox.claim(
            due_by=due_by or now,
            lease_until=lease_until,
            token=token,
            limit=limit,
            hold_until=hold_until,
            kind=self.kind,
        )
        return Claim(token, tuple(ready), held, lease_until)

    @at_storage_boundary
    def histories(
        self, mails: Sequence[OutboxMail], others: Sequence[OutboxMail] = ()
    ) -> tuple[dict[int, list[EventRecord]], dict[str, CaseRecord]]:
        """Each of ``mails``' case history up to the event before its warning or escalation,
        and the case of every mail (``others`` too) as it is now, read together. A mail
        about no case (a report) has no history."""
        streams, current = self.store.cases.events_and_cases(
            sorted({m.case_id for m in mails if m.case_id is not None}),
            sorted({m.case_id for m in (*mails, *others) if m.case_id is not None}),
        )
        found: dict[int, list[EventRecord]] = {}
        for mail in mails:
            if mail.case_id is None:
                found[mail.id] = []
                continue
            upto = mail.body.get("version")
            events = streams[mail.case_id]
            found[mail.id] = (
                [e for e in events if e.seq <= upto] if isinstance(upto, int) else events
            )
        return found, current

    @at_storage_boundary
    def sent(self, accepted: Sequence[Accepted], token: str) -> int:
        """The server accepted these mails; one transaction for them all."""
        rows = [(m.id, item.message_id, item.note) for item in accepted for m in item.mails]
        return self.store.outbox.mark_sent(rows, token, self.context.clock.now())

    @at_storage_boundary
    def failed(
        self, mails: Sequence[OutboxMail], token: str, error: str, *, permanent: bool
    ) -> tuple[int, int]:
        """Record a failed sending: (retried later, dead-lettered)."""
        now = self.context.clock.now()
        retry, dead = [], []
        for mail in mails:
            if permanent or mail.attempts >= self.settings.max_attempts:
                dead.append(mail.id)
            else:
                retry.append((mail.id, now + self.backoff(mail.attempts)))
        buried = (
            error if permanent else f"gave up after {self.settings.max_attempts} attempts: {error}"
        )
        return self.store.outbox.mark_failed(retry, dead, token, error=error, buried=buried)

    @at_storage_boundary
    def release(self, mails: Sequence[OutboxMail], token: str, at: datetime | None = None) -> int:
        """Give claimed mails back unsent, with no attempt counted, due at ``at`` (default:
        at once, where the lease is running out)."""
        due = self.context.clock.now() if at is None else at
        return self.store.outbox.release([m.id for m in mails], token, due)

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failure: doubling from ``backoff_s``, jittered."""
        return retry_wait(attempts, self.settings.backoff_s, self.settings.max_backoff_s, self._rng)

    @at_storage_boundary
    def list(
        self,
        *,
        status: str | None = None,
        limit: int | None = None,
        case_id: str | None = None,
        kind: str | None = None,
        branch: str | Sequence[str] | None = None,
    ) -> list[OutboxMail]:
        """Rows by id, optionally of one status, one case, one branch's (or several
        branches') cases and (among mails) one kind."""
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"unknown status {status!r}; known: {', '.join(STATUSES)}")
        return self.store.outbox.rows(
            status=status, limit=limit, kind=kind or self.kind, case_id=case_id, branch=branch
        )

    @at_storage_boundary
    def counts(self) -> dict[str, int]:
        """How many mails have each status."""
        return self.store.outbox.counts(self.kind)

    @at_storage_boundary
    def retry(self, mail_id: int) -> OutboxMail:
        """Queue a dead letter again, at once and with its attempts counted afresh."""
        mail, found = self.store.outbox.requeue(mail_id, self.context.clock.now())
        if mail is not None:
            return mail
        if found is None or (found.kind == WEBHOOK_KIND) != (self.kind == WEBHOOK_KIND):
            raise MailNotFound(mail_id)
        raise InvalidInput(
            f"outbox mail {mail_id} is {found.status}, not dead: only a dead letter is queued again"
        )

    @at_storage_boundary
    def retry_all(self, status: str = "dead") -> int:
        """Queue every mail of ``status`` (``dead`` or ``pending``) at once; how many."""
        if status not in RETRYABLE:
            raise InvalidInput(
                f"only {' or '.join(RETRYABLE)} mails are queued again, not {status!r}",
                field="status",
            )
        return self.store.outbox.requeue_all(status, self.context.clock.now(), self.kind)

    @at_storage_boundary
    def next_attempt(self) -> datetime | None:
        """When the next row this outbox claims falls due, if any is waiting."""
        return self.store.outbox.next_attempt(self.kind)
