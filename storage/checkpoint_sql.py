"""The audit streams on SQL: the whole history (:mod:`casework.storage.snapshot`), what a
checkpoint covers, and where the server stands in replication
(:mod:`casework.storage.replication`).

Each case's last event recorded by an instant is read from one snapshot, ordered by
case id (byte order on both databases) and seq, on the driver's own cursor (server-side
on PostgreSQL), so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from casework.storage.dialect import BATCH_ROWS, dialect_of
from casework.storage.replication import ReplicationState
from casework.storage.snapshot import HistoryStreams, snapshot_connection
from casework.storage.table_prefix import sql_for
from casework.storage.transition_sql import TransitionSQL


class Heads:
    """The heads as they stream by; :attr:`events` counts every event read so far."""

    def __init__(self, cursor: object) -> None:
        self._cursor = cursor
        self.events = 0

    def __iter__(self) -> Iterator[tuple[str, int, str]]:
        last: tuple[str, int, str] | None = None
        fetch = self._cursor.fetchmany  # type: ignore[attr-defined]
        while batch := fetch(BATCH_ROWS):
            self.events += len(batch)
            for row in batch:
                if last is not None and row[0] != last[0]:
                    yield last
                last = (row[0], row[1], row[2])
        if last is not None:
            yield last


class SqlAuditStreams(HistoryStreams, ReplicationState):
    """:class:`casework.storage.port.AuditStreams` on SQLite and PostgreSQL; a driver's
    error while a stream is read leaves as :class:`~casework.storage.errors.StorageError`."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql

    @contextmanager
    def case_heads(self, at: datetime) -> Iterator[Heads]:
        """(case id, seq, hash) of each case's last event recorded at or before ``at``."""
        engine = self.sql.engine
        dialect = dialect_of(engine)
        mark, bound = dialect.mark, dialect.time(at)
        with self.sql.translating(), snapshot_connection(engine) as raw:
            cursor = dialect.stream_cursor(raw, "cw_heads")
            try:
                statement = (
                    f"SELECT case_id, seq, hash FROM events WHERE recorded_at <= {mark} "  # noqa: S608
                    "ORDER BY case_id, seq"
                )
                cursor.execute(sql_for(engine, statement), (bound,))
                yield Heads(cursor)
            finally:
                cursor.close()
