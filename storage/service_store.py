"""What serving the HTTP API reads and writes beside cases: webhook subscriptions, worker
heartbeats and the figures ``/metrics`` publishes.

All functions take an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, insert, literal_column, select, update

from casework.storage.dialect import dialect_of
from casework.storage.records import WEBHOOK_KIND, Figures, Heartbeat, WebhookRecord
from casework.storage.tables import deadlines_table as deadlines
from casework.storage.tables import heartbeats_table as heartbeats
from casework.storage.tables import outbox_table as outbox
from casework.storage.tables import webhooks_table as webhooks


def add_webhook(conn: Connection, hook: WebhookRecord) -> None:
    """Store a subscription."""
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


def list_webhooks(conn: Connection, *, removed: bool = False) -> list[WebhookRecord]:
    """The subscriptions, oldest first (the removed ones too if ``removed``)."""
    query = select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id)
    if not removed:
        query = query.where(webhooks.c.removed_at.is_(None))
    return [WebhookRecord.from_row(row) for row in conn.execute(query)]


def remove_webhook(conn: Connection, hook_id: str, at: datetime) -> WebhookRecord | None:
    """End a subscription (once); the subscription, if there is one by that id."""
    conn.execute(
        update(webhooks)
        .where(webhooks.c.id == hook_id, webhooks.c.removed_at.is_(None))
        .values(removed_at=at)
    )
    row = conn.execute(select(webhooks).where(webhooks.c.id == hook_id)).first()
    return None if row is None else WebhookRecord.from_row(row)


def beat(conn: Connection, worker: str, started_at: datetime, at: datetime) -> None:
    """Record that ``worker`` lives at ``at``."""
    done = conn.execute(
        update(heartbeats).where(heartbeats.c.worker == worker).values(beat_at=at)
    ).rowcount
    if not done:
        conn.execute(insert(heartbeats).values(worker=worker, started_at=started_at, beat_at=at))


def latest_beat(conn: Connection) -> Heartbeat | None:
    """The freshest heartbeat of any worker."""
    row = conn.execute(select(heartbeats).order_by(heartbeats.c.beat_at.desc()).limit(1)).first()
    return None if row is None else Heartbeat(row.worker, row.started_at, row.beat_at)


def figures(conn: Connection, now: datetime, lag_bounds: Sequence[float]) -> Figures:
    """Deadlines pending and overdue, outbox rows by kind and status, the oldest pending
    mail, and how late fired deadlines fired (cumulative counts per bound)."""
    pending = deadlines.c.status == "pending"
    waiting, late = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((deadlines.c.due_at <= now, 1), else_=0)), 0),
        ).where(pending)
    ).one()
    rows = conn.execute(
        select(outbox.c.kind, outbox.c.status, func.count()).group_by(
            outbox.c.kind, outbox.c.status
        )
    )
    by_kind = {(kind, status): count for kind, status, count in rows}
    oldest = conn.execute(
        select(func.min(outbox.c.created_at)).where(
            outbox.c.status.in_(("pending", "held")), outbox.c.kind != WEBHOOK_KIND
        )
    ).scalar()
    lag: Any = literal_column(dialect_of(conn.engine).seconds_between("fired_at", "due_at"))
    counted = [func.coalesce(func.sum(case((lag <= b, 1), else_=0)), 0) for b in lag_bounds]
    fired = conn.execute(
        select(func.count(), func.coalesce(func.sum(lag), 0.0), *counted).where(
            deadlines.c.status == "fired", deadlines.c.fired_at.is_not(None)
        )
    ).one()
    if isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest)
    return Figures(
        deadlines_pending=int(waiting),
        deadlines_overdue=int(late),
        outbox=by_kind,
        oldest_pending_mail=oldest,
        fire_lag_buckets=[(b, int(n)) for b, n in zip(lag_bounds, fired[2:], strict=True)],
        fire_lag_count=int(fired[0]),
        fire_lag_sum=float(fired[1]),
    )
