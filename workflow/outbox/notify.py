"""The notifications' side of the outbox: claim due ones, hold them through quiet
hours, record each outcome under the claim's lease (retries with backoff, dead
letters), as the mail outbox does."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from casework.storage.notify_store import NOTIFY_KIND
from casework.storage.records import CaseRecord, OutboxMail
from casework.workflow.notify.settings import NotifySettings
from casework.workflow.outbox.mail import retry_wait
from casework.workflow.storage_boundary import at_storage_boundary

if TYPE_CHECKING:
    from casework.workflow.context import Context


def quiet_until(settings: NotifySettings, branch: str | None, now: datetime) -> datetime | None:
    """When the quiet hours around ``now`` end in ``branch``'s zone (``None``: not quiet)."""
    if settings.quiet_hours is None:
        return None
    begin, end = settings.quiet_hours
    local = now.astimezone(settings.zone(branch))
    clock = local.time().replace(tzinfo=None)
    inside = begin <= clock < end if begin < end else (clock >= begin or clock < end)
    if not inside:
        return None
    ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends


@dataclass(frozen=True)
class NotifyClaim:
    """Notifications claimed under one lease token; how many were held for quiet hours."""

    token: str
    rows: tuple[OutboxMail, ...]
    held: int


class NotifyOutbox:
    """Delivery bookkeeping of one engine's notifications. Safe to share between threads."""

    def __init__(self, context: Context, *, rng: random.Random | None = None) -> None:
        self.context = context
        self.store = context.store
        self.settings = context.settings.notify
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets

    @at_storage_boundary
    def claim(self, token: str, *, limit: int, due_by: datetime | None = None) -> NotifyClaim:
        """Claim up to ``limit`` notifications due by ``due_by``; hold those in quiet hours."""
        now = self.context.clock.now()

        def hold(row: OutboxMail) -> datetime | None:
            branch = row.body.get("branch")
            return quiet_until(self.settings, branch if isinstance(branch, str) else None, now)

        ready, held = self.store.outbox.claim(
            due_by=due_by or now,
            lease_until=now + timedelta(seconds=self.settings.lease_s),
            token=token,
            limit=limit,
            hold_until=hold,
            kind=NOTIFY_KIND,
        )
        return NotifyClaim(token, tuple(ready), held)

    @at_storage_boundary
    def case(self, case_id: str) -> CaseRecord | None:
        """The case as it is now (its contact is read when a message is sent)."""
        return self.store.cases.get(case_id)

    @at_storage_boundary
    def sent(self, row: OutboxMail, token: str, message_id: str, note: str | None) -> int:
        """The provider or the mail server accepted ``row``."""
        return self.store.outbox.mark_sent(
            [(row.id, message_id, note)], token, self.context.clock.now()
        )

    @at_storage_boundary
    def failed(
        self, row: OutboxMail, token: str, error: str, *, permanent: bool
    ) -> tuple[int, int]:
        """A failed sending: (retried later, dead-lettered)."""
        if permanent or row.attempts >= self.settings.max_attempts:
            buried = error if permanent else f"gave up after {row.attempts} attempts: {error}"
            return self.store.outbox.mark_failed([], [row.id], token, error=error, buried=buried)
        at = self.context.clock.now() + self.backoff(row.attempts)
        return self.store.outbox.mark_failed([(row.id, at)], [], token, error=error, buried=error)

    @at_storage_boundary
    def release(self, rows: Sequence[OutboxMail], token: str) -> int:
        """Give claimed rows back unsent, due at once."""
        return self.store.outbox.release([r.id for r in rows], token, self.context.clock.now())

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failure: doubling from ``backoff_s``, jittered."""
        return retry_wait(attempts, self.settings.backoff_s, self.settings.max_backoff_s, self._rng)

    @at_storage_boundary
    def list(self, *, status: str | None = None, case_id: str | None = None) -> list[OutboxMail]:
        """Notification rows by id, optionally of one status or case."""
        return self.store.outbox.rows(status=status, kind=NOTIFY_KIND, case_id=case_id)

    @at_storage_boundary
    def next_attempt(self) -> datetime | None:
        """When the next notification falls due, if any is waiting."""
        return self.store.outbox.next_attempt(NOTIFY_KIND)


__all__ = ["NotifyClaim", "NotifyOutbox", "quiet_until"]
