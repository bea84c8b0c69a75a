"""The part of the engine the scheduler runs: its public methods for due deadlines,
heartbeats and retention, and its context for the outboxes. The scheduler depends on
this, not on the engine's class; a :class:`~casework.workflow.Engine` is one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from casework.workflow.clock import Clock
from casework.workflow.config import Settings
from casework.workflow.context import Context

if TYPE_CHECKING:
    from casework.workflow.sla.due import Fired


class EngineApi(Protocol):
    """What the worker and the deliverers call on the engine they run."""

    @property
    def context(self) -> Context:
        """The engine's parts: the outboxes are built on them."""

    @property
    def clock(self) -> Clock:
        """Where the engine's time comes from."""

    @property
    def settings(self) -> Settings:
        """The engine's configuration (mail, webhooks, notify, reports, retention)."""

    def process_due(
        self, now: datetime | None = None, *, batch: int = 200, max_batches: int | None = None
    ) -> list[Fired]:
        """Fire the deadlines due at ``now``."""

    def next_due(self) -> datetime | None:
        """When the earliest pending deadline falls due."""

    def on_deadline_planned(self, listener: Callable[[datetime], None]) -> None:
        """Call ``listener(due_at)`` after a commit that planned a deadline."""

    def heartbeat(self, worker: str, started_at: datetime) -> None:
        """Record that the worker named ``worker`` lives now."""

    def erase_due(self, *, dry_run: bool = False) -> dict[str, Any]:
        """Erase every customer the retention makes due."""

    def finish_erasure(self) -> dict[str, Any]:
        """Complete a compaction earlier erasures left pending."""
