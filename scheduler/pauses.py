"""A sender's pause while its receiver is out of reach: a span of the engine's clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Pause:
    """From when a receiver was found out of reach to when the sender tries it again."""

    began: datetime
    ends: datetime

    def until(self, now: datetime) -> datetime | None:
        """When the pause ends if it holds at ``now``; ``None`` once it is over, or where
        the clock was set back before it began (the host's time corrected)."""
        return self.ends if self.began <= now < self.ends else None
