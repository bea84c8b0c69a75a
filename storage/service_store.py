"""What serving reads and writes beside cases: workers' heartbeats and the figures
``/metrics`` publishes, through SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, literal_column, select, update

from casework.storage.dialect import dialect_of
from casework.storage.records import WEBHOOK_KIND, Figures, Heartbeat
from casework.storage.tables import deadlines_table as deadlines
from casework.storage.tables import heartbeats_table as heartbeats
from casework.storage.tables import outbox_table as outbox
from casework.storage.transition_sql import TransitionSQL


class SqlService:
    """:class:`casework.storage.port.Service` on SQLite and PostgreSQL."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql

    def beat(self, worker: str, started_at: datetime, at: datetime) -> None:
        """Record that ``worker`` lives at ``at``."""
        with self.sql.writing() as conn:
            done = conn.execute(
                update(heartbeats).where(heartbeats.c.worker == worker).values(beat_at=at)
            ).rowcount
            if not done:
                conn.execute(
                    insert(heartbeats).values(worker=worker, started_at=started_at, beat_at=at)
                )

    def latest_beat(self) -> Heartbeat | None:
        """The freshest heartbeat of any worker."""
        with self.sql.reading() as conn:
            row = conn.execute(
                select(heartbeats).order_by(heartbeats.c.beat_at.desc()).limit(1)
            ).first()
            return None if row is None else Heartbeat(row.worker, row.started_at, row.beat_at)

    def figures(self, now: datetime, lag_bounds: Sequence[float]) -> Figures:
        """Deadlines pending and overdue, outbox rows by kind and status, the oldest pending
        mail, and how late fired deadlines fired (cumulative counts per bound)."""
        with self.sql.reading() as conn:
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
