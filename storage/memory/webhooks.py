"""``store.webhooks`` in memory: webhook subscriptions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from casework.storage.errors import WriteConflict
from casework.storage.memory.rows import utc_times
from casework.storage.memory.tx import Role, rows_of
from casework.storage.records import WebhookRecord
from casework.storage.timestamps import as_utc
from casework.storage.tx import Tx


class MemoryWebhooks(Role):
    """``store.webhooks`` in memory: webhook subscriptions."""

    def targets(self, tx: Tx) -> list[tuple[str, str, tuple[str, ...], str | None]]:
        cursor = rows_of(tx)
        return [
            (h.id, h.url, h.events, h.branch)
            for _, h in sorted(cursor.webhooks.items())
            if h.removed_at is None
        ]

    def add(self, hook: WebhookRecord) -> None:
        with self._writing() as rows:
            if hook.id in rows.webhooks:
                raise WriteConflict(f"webhook {hook.id!r} exists")
            rows.webhooks[hook.id] = utc_times(hook)

    def subscriptions(self, *, removed: bool = False) -> list[WebhookRecord]:
        return sorted(
            (h for h in self._rows.webhooks.values() if removed or h.removed_at is None),
            key=lambda h: (h.created_at, h.id),
        )

    def remove(self, hook_id: str, at: datetime) -> WebhookRecord | None:
        with self._writing() as rows:
            hook = rows.webhooks.get(hook_id)
            if hook is not None and hook.removed_at is None:
                hook = rows.webhooks[hook_id] = replace(hook, removed_at=as_utc(at))
            return hook
