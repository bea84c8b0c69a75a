"""Webhook subscriptions on SQL: the live ones read on the transaction's driver cursor
(an event queues its deliveries in its own transaction), the rest through SQLAlchemy
Core, whose table classes are imported by the calls that use them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from casework.storage.records import WebhookRecord
from casework.storage.transition_sql import TransitionSQL, read_json
from casework.storage.tx import Tx, cursor_of


class SqlWebhooks:
    """:class:`casework.storage.port.Webhooks` on SQLite and PostgreSQL."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql
        self._targets = (
            "SELECT id, url, events, branch FROM webhooks WHERE removed_at IS NULL ORDER BY id"
        )
        if sql.pipelined:  # read in the round trip that locks the case
            sql.read_with_lock = self._targets

    def targets(self, tx: Tx) -> list[tuple[str, str, tuple[str, ...], str | None]]:
        """The live subscriptions: (id, url, the events each asked for, the branch it
        hears, or none for every branch)."""
        cursor = self.sql.sent_ahead(tx, self._targets)
        if cursor is None:  # not read with the case's lock: read now
            cursor = cursor_of(tx)
            cursor.execute(self._targets)
        return [(row[0], row[1], tuple(read_json(row[2])), row[3]) for row in cursor.fetchall()]

    def add(self, hook: WebhookRecord) -> None:
        """Store a subscription."""
        from casework.storage.tables import webhooks_table as webhooks

        with self.sql.writing() as conn:
            conn.execute(
                insert(webhooks).values(
                    id=hook.id,
                    url=hook.url,
                    events=list(hook.events),
                    secret=hook.secret,
                    created_at=hook.created_at,
                    removed_at=hook.removed_at,
                    branch=hook.branch,
                )
            )

    def subscriptions(self, *, removed: bool = False) -> list[WebhookRecord]:
        """The subscriptions, oldest first (the removed ones too if ``removed``)."""
        from casework.storage.tables import webhooks_table as webhooks

        with self.sql.reading() as conn:
            query = select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id)
            if not removed:
                query = query.where(webhooks.c.removed_at.is_(None))
            return [WebhookRecord.from_row(row) for row in conn.execute(query)]

    def remove(self, hook_id: str, at: datetime) -> WebhookRecord | None:
        """End a subscription (once); the subscription, if there is one by that id."""
        from casework.storage.tables import webhooks_table as webhooks

        row = self.sql.end_once(webhooks, hook_id, "removed_at", at)
        return None if row is None else WebhookRecord.from_row(row)
