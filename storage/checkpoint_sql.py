"""The whole history streamed for auditors (:mod:`casework.storage.snapshot`), what a
checkpoint covers, and where the server stands in replication.

Each case's last event recorded by an instant is read from one snapshot, ordered by
case id (byte order on both databases) and seq, on the driver's own cursor (server-side
on PostgreSQL), so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from casework.storage.dialect import BATCH_ROWS, dialect_of
from casework.storage.records import Streams
from casework.storage.snapshot import (
    export_rows,
    history_snapshot,
    middle_case_id,
    snapshot_connection,
)
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


class SqlAuditStreams:
    """:class:`casework.storage.port.AuditStreams` on SQLite and PostgreSQL; a driver's
    error while a stream is read leaves as :class:`~casework.storage.errors.StorageError`."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql

    @contextmanager
    def snapshot(
        self,
        case_ids: Sequence[str] | None = None,
        id_range: tuple[str | None, str | None] = (None, None),
        received: tuple[datetime, datetime] | None = None,
    ) -> Iterator[Streams]:
        """Cases, events and pending deadlines streamed from one snapshot, by case id."""
        engine = self.sql.engine
        with self.sql.translating(), history_snapshot(engine, case_ids, id_range, received) as s:
            yield s

    def middle_case_id(self) -> str | None:
        """The case id that splits the cases in two halves."""
        with self.sql.translating():
            return middle_case_id(self.sql.engine)

    @contextmanager
    def export_rows(
        self,
        case_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Iterator[Iterator[tuple[Any, ...]]]:
        """Every event (of one case, occurred in ``[since, until)``) with its case's
        machine and version, by case id and seq, from one snapshot."""
        with self.sql.translating(), export_rows(self.sql.engine, case_id, since, until) as rows:
            yield rows

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

    def replication(self) -> dict[str, Any] | None:
        """Where the server stands in replication (:mod:`casework.storage.replication`)."""
        from casework.storage.replication import replication

        with self.sql.reading() as conn:
            return replication(conn)
