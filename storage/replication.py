"""Where a PostgreSQL server stands in replication: a hot standby's replay position and
lag, or a primary's standbys and theirs. SQLite replicates nothing: ``None``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text

from casework.storage.timestamps import as_utc
from casework.storage.transition_sql import TransitionSQL


class ReplicationState:
    """Where the server stands in replication (a part of
    :class:`casework.storage.checkpoint_sql.SqlAuditStreams`)."""

    sql: TransitionSQL

    def replication(self) -> dict[str, Any] | None:
        """``{"role": "standby", "replay_lsn", "replayed_at", "lag_s"}`` on a hot standby
        (lag 0 when it has replayed all it received), ``{"role": "primary", "standbys":
        [{"name", "state", "sync", "lag_s"}]}`` on a primary; ``None`` on SQLite."""
        with self.sql.reading() as conn:
            if conn.dialect.name != "postgresql":
                return None
            standby = conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
            if standby:
                row = conn.execute(
                    text(
                        "SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp(), "
                        "pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), now()"
                    )
                ).one()
                replayed: datetime | None = None if row[1] is None else as_utc(row[1])
                caught_up = bool(row[2])
                lag = (
                    0.0
                    if caught_up or replayed is None
                    else (as_utc(row[3]) - replayed).total_seconds()
                )
                return {"role": "standby", "replay_lsn": row[0], "replayed_at": replayed,
                        "lag_s": max(lag, 0.0)}  # fmt: skip
            rows = conn.execute(
                text(
                    "SELECT application_name, state, sync_state, "
                    "COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) FROM pg_stat_replication "
                    "ORDER BY application_name"
                )
            ).all()
            return {"role": "primary", "standbys": [
                {"name": r[0], "state": r[1], "sync": r[2], "lag_s": float(r[3])} for r in rows
            ]}  # fmt: skip


def standby_lags(state: dict[str, Any], own: str = "read") -> list[tuple[str, float]]:
    """Each standby's lag in seconds from a state that
    :meth:`ReplicationState.replication` gave: a standby's own (named ``own``), or a
    primary's standbys' by name."""
    if state["role"] == "standby":
        return [(own, float(state["lag_s"]))]
    return [(s["name"], float(s["lag_s"])) for s in state["standbys"]]
