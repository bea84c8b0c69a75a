"""Reading the whole history fast and consistently: raw rows from one snapshot.

Verification and exports read every case and every event. Both streams come from
one read transaction (one snapshot) on the driver's own cursors, ordered by case id
(byte order on both databases) and then by seq, in batches, so memory stays flat.
Rows are tuples in :data:`CASE_COLUMNS` / :data:`EVENT_COLUMNS` order. Times are their
canonical UTC text (as SQLite stores them); an event's data is its stored JSON text,
which is canonical JSON unless someone altered it; the case's JSON columns are decoded.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from casework.storage.chain import parse_json
from casework.storage.database import (
    borrow,
    driver_errors,
    hand_back,
    is_own,
    is_pooled,
    roll_back_or_drop,
)
from casework.storage.dialect import BATCH_ROWS, Dialect, dialect_of
from casework.storage.read_ahead import ReadAhead
from casework.storage.records import Streams
from casework.storage.table_prefix import sql_for
from casework.storage.transition_sql import (
    CASE_COLUMNS,
    EVENT_COLUMNS,
    JSON_COLUMNS,
    TIME_COLUMNS,
    TransitionSQL,
)

_EXPORT_TYPES = ("text", "int4", "text", "text", "text", "text", "text", "text", "text", "text",
                 "text", "text", "int4", "int4", "text")  # fmt: skip
"""PostgreSQL's types of an export row's columns, for ``COPY``."""
_CASE_JSON = tuple(i for i, c in enumerate(CASE_COLUMNS) if c in JSON_COLUMNS)


class HistoryStreams:
    """The whole history from one snapshot (a part of
    :class:`casework.storage.checkpoint_sql.SqlAuditStreams`); a driver's error while a
    stream is read leaves as :class:`~casework.storage.errors.StorageError`."""

    sql: TransitionSQL

    @contextmanager
    def snapshot(
        self,
        case_ids: Sequence[str] | None = None,
        id_range: tuple[str | None, str | None] = (None, None),
        received: tuple[datetime, datetime] | None = None,
    ) -> Iterator[Streams]:
        """Stream every case and event (or those of ``case_ids``, or of the case ids in
        ``id_range``: from the first, inclusive, to the second, exclusive, or of the cases
        ``received`` in ``[start, end)``) from one snapshot."""
        engine = self.sql.engine
        dialect = dialect_of(engine)
        sqlite, mark = dialect.sqlite, dialect.mark
        where_case = where_event = where_deadline = ""
        params: tuple[Any, ...] = ()
        if received is not None:
            in_period = f"received_at >= {mark} AND received_at < {mark}"
            where_case = f" WHERE {in_period}"
            where_event = f" WHERE case_id IN (SELECT id FROM cases WHERE {in_period})"
            where_deadline = f" AND case_id IN (SELECT id FROM cases WHERE {in_period})"
            params = tuple(dialect.time(moment) for moment in received)
        elif case_ids is not None:
            marks = ", ".join(mark for _ in case_ids)
            where_case, where_event = f" WHERE id IN ({marks})", f" WHERE case_id IN ({marks})"
            where_deadline = f" AND case_id IN ({marks})"
            params = tuple(case_ids)
        elif id_range != (None, None):
            low, high = id_range
            bounds = [f"{{c}} >= {mark}"] * (low is not None) + [f"{{c}} < {mark}"] * (
                high is not None
            )
            where = " AND ".join(bounds)
            where_case = " WHERE " + where.format(c="id")
            where_event = " WHERE " + where.format(c="case_id")
            where_deadline = " AND " + where.format(c="case_id")
            params = tuple(v for v in id_range if v is not None)
        case_sql = (
            f"SELECT {_select_list(CASE_COLUMNS, dialect)} FROM cases{where_case} ORDER BY id"
        )
        event_sql = (
            f"SELECT {_select_list(EVENT_COLUMNS, dialect)} FROM events{where_event} "
            "ORDER BY case_id, seq"
        )
        due = dialect.time_text("due_at")
        deadline_sql = (
            f"SELECT case_id, clock, cycle, level, {due} FROM deadlines "
            f"WHERE status = 'pending'{where_deadline} ORDER BY case_id"
        )
        case_sql, event_sql, deadline_sql = (
            sql_for(engine, s) for s in (case_sql, event_sql, deadline_sql)
        )
        with self.sql.translating(), snapshot_connection(engine) as raw:
            names = ("cases", "events", "deadlines")
            cursors = [dialect.stream_cursor(raw, f"cw_{n}") for n in names]
            beside = (
                _read_beside(engine, raw, event_sql, params)
                if case_ids is None
                else contextlib.nullcontext()
            )
            try:
                with beside as events:
                    yield Streams(
                        cases=_rows(cursors[0], case_sql, params, _case_row, sqlite),
                        events=events or _rows(cursors[1], event_sql, params, None, sqlite),
                        deadlines=_rows(cursors[2], deadline_sql, params, None, sqlite),
                    )
            finally:
                for cursor in cursors:
                    cursor.close()

    def middle_case_id(self, min_events: int = 0) -> str | None:
        """The case id that splits the cases in two halves (``None`` with under two cases,
        or with fewer than ``min_events`` events: counting stops there)."""
        engine = self.sql.engine
        with self.sql.translating():
            mark = dialect_of(engine).mark
            raw = borrow(engine)
            try:
                cursor = raw.cursor()
                if min_events > 0:
                    events = f"SELECT count(*) FROM (SELECT 1 FROM events LIMIT {mark}) AS e"
                    cursor.execute(sql_for(engine, events), (min_events,))
                    if int(cursor.fetchone()[0]) < min_events:
                        return None
                cursor.execute(sql_for(engine, "SELECT count(*) FROM cases"))
                count = int(cursor.fetchone()[0])
                if count < 2:
                    return None
                middle = f"SELECT id FROM cases ORDER BY id LIMIT 1 OFFSET {mark}"
                cursor.execute(sql_for(engine, middle), (count // 2,))
                row = cursor.fetchone()
                return None if row is None else str(row[0])
            finally:
                give_back(raw)

    @contextmanager
    def export_rows(
        self,
        case_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Iterator[Iterator[tuple[Any, ...]]]:
        """Every event (of one case, occurred in ``[since, until)``) with its case's machine
        and machine version, ordered by case id and seq, from one snapshot.

        Rows are the :data:`EVENT_COLUMNS` (times as canonical text, data as stored text)
        followed by ``machine``, ``machine_version``, the case's ``event_format`` and, on
        the opening event of a format-2 history, its kept personal values as a JSON object
        text (``None`` where there are none: erased, or format 1). PostgreSQL streams them with
        ``COPY ... TO STDOUT``, several times faster than a cursor.
        """
        engine = self.sql.engine
        dialect = dialect_of(engine)
        mark = dialect.mark
        where, params = [], []
        for clause, value in (("e.case_id = {}", case_id), ("e.occurred_at >= {}", since),
                              ("e.occurred_at < {}", until)):  # fmt: skip
            if value is not None:
                where.append(clause.format(mark))
                params.append(value)
        personal = (
            f"CASE WHEN e.seq = 1 AND c.event_format = 2 THEN (SELECT "
            f"{dialect.json_object_agg('p.field', 'p.value')} FROM personal_data p "
            "WHERE p.case_id = e.case_id) END"
        )
        statement = (
            f"SELECT {_select_list(EVENT_COLUMNS, dialect, 'e.')}, c.machine, c.machine_version, "
            f"c.event_format, {personal} "
            "FROM events e "
            "JOIN cases c ON c.id = e.case_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY e.case_id, e.seq"
        )
        with self.sql.translating(), snapshot_connection(engine) as raw:
            yield dialect.stream_rows(raw, sql_for(engine, statement), params, _EXPORT_TYPES)


@contextmanager
def snapshot_connection(engine: Engine) -> Iterator[Any]:
    """A raw driver connection inside one read-only snapshot transaction (a deferred
    transaction on SQLite, REPEATABLE READ READ ONLY on PostgreSQL), rolled back and
    closed afterwards."""
    raw = borrow(engine)
    try:
        dialect_of(engine).begin_snapshot(raw)
        yield raw
    finally:
        give_back(raw)


def give_back(raw: Any) -> None:
    """Roll ``raw`` back and return it to its pool; one the rollback finds broken (the
    server or the network cut it) is invalidated instead, so the pool neither keeps it
    nor logs its failed reset, and the error that cut it is what the caller sees."""
    try:
        roll_back_or_drop(raw)
    finally:
        hand_back(raw)


SNAPSHOT_ID = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")
"""What ``pg_export_snapshot()`` answers (written into ``SET TRANSACTION SNAPSHOT``,
which takes no parameter)."""


@contextmanager
def _read_beside(
    engine: Engine, raw: Any, statement: str, params: tuple[Any, ...]
) -> Iterator[Iterator[tuple[Any, ...]] | None]:
    """The rows of ``statement`` (an event stream) fetched ahead by a thread
    (:class:`~casework.storage.read_ahead.ReadAhead`) on a second connection that shares
    ``raw``'s snapshot; ``None`` where that cannot be had.

    The server makes the next batch while the caller checks this one, and a fetch of
    the other streams on ``raw`` never waits behind one of these. Only on PostgreSQL through
    casework's own pool (a host's pool, or a bouncer's, may have no second connection to
    give), and only where the server exports the snapshot (``raw``'s transaction is
    begun again if it refuses, before anything was read in it)."""
    dialect = dialect_of(engine)
    if dialect.sqlite or not is_own(engine) or is_pooled(engine):
        yield None
        return
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = str(cursor.fetchone()[0])
    except driver_errors():  # a standby, say: the snapshot is taken again
        raw.rollback()
        dialect.begin_snapshot(raw)
        yield None
        return
    if not SNAPSHOT_ID.fullmatch(snapshot):
        yield None
        return
    second = borrow(engine)
    try:
        dialect.begin_snapshot(second)
        second.cursor().execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        cursor = dialect.stream_cursor(second, "cw_events")
        reader = ReadAhead(cursor, statement, params)
        try:
            yield iter(reader)
        finally:
            reader.close()
            cursor.close()
    finally:
        give_back(second)


def _select_list(columns: Sequence[str], dialect: Dialect, table: str = "") -> str:
    return dialect.select_list(columns, TIME_COLUMNS, JSON_COLUMNS, table)


def _rows(
    cursor: Any, statement: str, params: tuple[Any, ...], convert: Any, sqlite: bool
) -> Iterator[tuple[Any, ...]]:
    if sqlite and convert is None:
        # The driver's own iteration, with no generator around it, is the fastest way.
        result: Iterator[tuple[Any, ...]] = cursor.execute(statement, params)
        return result
    return _converted(cursor, statement, params, convert, sqlite)


def _converted(
    cursor: Any, statement: str, params: tuple[Any, ...], convert: Any, sqlite: bool
) -> Iterator[tuple[Any, ...]]:
    cursor.execute(statement, params)
    while batch := cursor.fetchmany(BATCH_ROWS):
        if convert is None:
            yield from batch
        else:
            for row in batch:
                yield convert(row, sqlite)


def _case_row(row: Sequence[Any], sqlite: bool) -> tuple[Any, ...]:
    values = list(row)
    for index in _CASE_JSON:
        if isinstance(values[index], str):
            try:
                values[index] = parse_json(values[index])
            except ValueError:  # not JSON: left as text, for verify to name the case
                continue
    return tuple(values)
