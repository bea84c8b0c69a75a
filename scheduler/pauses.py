"""A sender's pause while its receiver is out of reach: a span of the engine's clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from casework.workflow.outbox.mail import Outbox


@dataclass(frozen=True)
class Pause:
    """From when a receiver was found out of reach to when the sender tries it again."""

    began: datetime
    ends: datetime

    @classmethod
    def first_backoff(cls, now: datetime, outbox: Outbox) -> Pause:
        """A pause from ``now`` for as long as a row of ``outbox`` waits after its first
        failure: what is queued meanwhile waits no longer than a row that failed once."""
        return cls(now, now + outbox.backoff(1))

    def until(self, now: datetime) -> datetime | None:
        """When the pause ends if it holds at ``now``; ``None`` once it is over, or where
        the clock was set back before it began (the host's time corrected)."""
        return self.ends if self.began <= now < self.ends else None
