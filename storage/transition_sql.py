"""The hot path of a transition in plain SQL on the driver's own connection.

A transition is three statements and a commit: lock and read the case row, insert
the event, move the case row on ``WHERE version = expected`` (on PostgreSQL the last
two are one statement, in a pipelined transaction: :meth:`TransitionSQL.transaction`).
Going through the SQLAlchemy expression layer costs more than the SQL itself (about 0.4 ms of the
1 ms a transition took), so these statements are written once per dialect and run on
the DBAPI cursor. Column types are converted here exactly as :mod:`casework.storage.tables`
stores them, and a test proves that rows written either way read back the same.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Row, Table
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool

from casework.storage.chain import column_json, parse_json
from casework.storage.database import (
    AFTER_COMMIT,
    borrow,
    hand_back,
    is_own,
    is_pooled,
    is_read_only,
    read_transaction,
    refuses_writes,
    roll_back_or_drop,
    schema_of,
    write_transaction,
)
from casework.storage.dialect import dialect_of
from casework.storage.errors import MalformedRow, StorageBusy, StorageError, WriteConflict
from casework.storage.pipeline_pace import PacedCursor
from casework.storage.records import (
    CASE_FIELDS,
    EVENT_FIELDS,
    UNDECLARED_AS_EMPTY,
    CaseRecord,
    EventRecord,
)
from casework.storage.table_prefix import cursor_for
from casework.storage.timestamps import as_utc
from casework.storage.tx import SqlTx, Tx, cursor_of

CASE_COLUMNS = CASE_FIELDS
EVENT_COLUMNS = EVENT_FIELDS
TIME_COLUMNS = frozenset(
    {"received_at", "opened_at", "last_event_at", "occurred_at", "recorded_at"}
)
JSON_COLUMNS = frozenset({"attributes", "facts", "data", "sla", "document", "recipients", "body"})
UPDATED_COLUMNS = (
    "state", "version", "owner", "facts", "escalation_level", "last_event_at", "head_hash",
)  # fmt: skip
OPTIONAL_COLUMNS = (
    "sla_policy", "sla", "priority", "category", "channel", "customer", "contact", "attributes",
)  # fmt: skip
"""Updated only where an update names them: the clocks by events that move them, the
classification by ``reclassify``, personal values by ``erased``."""


def _pipelines(engine: Engine) -> bool:
    """Whether the engine's driver runs statements in pipeline mode (psycopg 3 on a
    libpq that has it)."""
    if engine.dialect.driver != "psycopg":
        return False
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def _writers_lock(sqlite: bool) -> threading.Lock | contextlib.nullcontext[None]:
    """Where the writers of this process queue: SQLite has one writer at a time, and
    they are woken here at once rather than in SQLite's busy handler, which sleeps and
    retries (nothing to queue for elsewhere)."""
    return threading.Lock() if sqlite else contextlib.nullcontext()


def first_line(err: BaseException) -> str:
    """A driver's message on one line (SQLAlchemy's wrapped error: the driver's own)."""
    text = str(getattr(err, "orig", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class TransitionSQL:
    """The connections of one engine: write transactions on a driver cursor, reads and
    writes through SQLAlchemy, each with driver errors translated into storage's own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = dialect = dialect_of(engine)
        self.sqlite = dialect.sqlite
        self.mark = dialect.mark
        self._writer = _writers_lock(self.sqlite)
        self._group: int | None = None
        """The thread holding a :meth:`grouped` transaction open, if one does."""
        self._read_only_per_transaction = is_pooled(engine) and is_read_only(engine)
        self._schema = schema_of(engine)
        dbapi = engine.dialect.dbapi
        self._integrity_error: type[Exception] = dbapi.IntegrityError if dbapi else Exception
        self.driver_error: type[Exception] = dbapi.Error if dbapi else Exception
        self.pipelined = not self.sqlite and _pipelines(engine)
        # A file's writer is kept (not an in-memory database's: its pool's connection is
        # the database itself).
        self._keeps_writer = self.sqlite and is_own(engine) and isinstance(engine.pool, QueuePool)
        self._kept: KeptConnection | None = None
        """The writer connection kept between calls, once one was opened."""
        _BEGUN.add(self)
        self.read_with_lock: str | None = None
        """A statement sent with each case lock of a pipelined transaction, after it: its
        rows come back in the lock's round trip, for :meth:`sent_ahead` to hand out."""

    @contextmanager
    def translating(self) -> Iterator[None]:
        """Driver and SQLAlchemy errors raised inside leave as :class:`StorageError`
        (:class:`WriteConflict` for a key taken, :class:`StorageBusy` for a pool that
        stayed exhausted); storage's own errors leave as they are."""
        try:
            yield
        except StorageError:
            raise
        except PoolTimeout as err:
            raise StorageBusy(first_line(err)) from err
        except (IntegrityError, self._integrity_error) as err:
            raise WriteConflict(first_line(err)) from err
        except (SQLAlchemyError, self.driver_error) as err:
            raise StorageError(first_line(err), read_only=refuses_writes(err)) from err

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction (one snapshot) on a SQLAlchemy connection."""
        with self.translating(), read_transaction(self.engine) as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction on a SQLAlchemy connection, committed on success."""
        self._not_in_group()
        with self.translating(), write_transaction(self.engine) as conn:
            yield conn

    @contextmanager
    def grouped(self) -> Iterator[Connection]:
        """One write transaction that several calls join by its connection, each in a
        savepoint of its own (``Engine.fire(..., connection=...)``), committed once at
        the end: what they wrote is durable together, or none of it is. Threads of
        this process queue for it as for :meth:`transaction`. A write of this thread
        that does not join it is refused at once (on SQLite it would wait for the
        lock the group holds). What the calls ask to run after the commit
        (:func:`~casework.storage.database.after_commit`) runs once it succeeded."""
        then: list[Callable[[], None]] = []
        with self._writer, self.writing() as conn:
            conn.info[AFTER_COMMIT] = then
            self._group = threading.get_ident()
            try:
                yield conn
            finally:
                self._group = None
                del conn.info[AFTER_COMMIT]
        for call in then:
            call()

    def _not_in_group(self) -> None:
        """Refuse a transaction of its own to the thread that holds a group open."""
        if self._group == threading.get_ident():
            raise StorageError("a write inside a group transaction must join it by its connection")

    def end_once(self, table: Table, row_id: str, column: str, at: datetime) -> Row[Any] | None:
        """Set ``column`` of the row ``row_id`` to ``at`` unless it is set already (a row is
        ended once and keeps its first time); the row after, if there is one by that id."""
        with self.writing() as conn:
            conn.execute(
                table.update()
                .where(table.c.id == row_id, table.c[column].is_(None))
                .values({column: at})
            )
            return conn.execute(table.select().where(table.c.id == row_id)).first()

    @contextmanager
    def borrowed(self) -> Iterator[Any]:
        """A driver connection checked out of the pool for one call and returned at once:
        nothing is kept between calls, so a host's pool is never held by casework."""
        with self.translating():  # connecting can fail, or wait out the pool
            raw = borrow(self.engine)
        try:
            yield raw
        finally:
            hand_back(raw)  # back to the pool (or gone, if it was invalidated)

    @contextmanager
    def reading_cursor(self, *, snapshot: bool) -> Iterator[Any]:
        """A driver cursor on a borrowed connection for reads, in one snapshot if asked;
        what the driver refuses becomes a :class:`StorageError`."""
        with self.borrowed() as raw:
            try:
                if snapshot:
                    self.dialect.begin_snapshot(raw)
                cursor = cursor_for(raw.cursor(), self.engine)
                try:
                    yield cursor
                finally:
                    with contextlib.suppress(Exception):
                        cursor.close()
                raw.rollback()
            except self.driver_error as err:
                raw.invalidate()
                raise StorageError(str(err).strip().splitlines()[0]) from err

    @contextmanager
    def _writer_connection(self) -> Iterator[Any]:
        """The connection a write transaction runs on. On SQLite through casework's own
        engine, one kept between calls (the database has one writer at a time, and
        threads of this process take turns at :attr:`_writer` first), taken out of the
        pool so the pool lends its others as before; opened again after a failure that
        leaves it broken or inside a transaction. Otherwise, one borrowed for the
        transaction alone (a host's pool is never held)."""
        if not self._keeps_writer:
            with self.borrowed() as raw:
                yield raw
            return
        kept = self._kept
        if kept is None:
            with self.translating():
                pooled = borrow(self.engine)
            driver = pooled.dbapi_connection
            pooled.detach()  # casework's own from now on: the pool makes another
            self._kept = kept = KeptConnection(driver)
        try:
            yield kept
        except BaseException:
            if not _left_clean(kept):
                self._drop_writer()
            raise

    def _after_fork(self) -> None:
        """Begin anew in a process just forked (:func:`_begun_anew_in_child`): the
        writers' lock as the fork found it (held, if a thread of the parent was writing)
        and the parent's kept writer are left be, and the writer is opened again (the
        fork replaced casework's own pool too: :func:`casework.storage.database.make_engine`)."""
        self._writer = _writers_lock(self.sqlite)
        self._group = None
        if self._kept is not None:  # never closed here, nor collected: the parent's
            _INHERITED.append(self._kept)
            self._kept = None

    def held(self) -> int:
        """The connections held now: the pool's lent out, and the kept writer while a
        write transaction (not a group, which runs on a pooled one) runs on it."""
        busy = (
            self._keeps_writer
            and self._group is None
            and cast("threading.Lock", self._writer).locked()
        )
        return int(self.engine.pool.checkedout()) + int(busy)  # type: ignore[attr-defined]

    def _drop_writer(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            kept.invalidate()

    def close(self) -> None:
        """Close the writer connection kept between calls, if one is (on SQLite
        through casework's own engine), once a write another thread runs on it has
        ended; nothing else is kept."""
        if self._group == threading.get_ident():  # its group runs on a pooled connection
            self._drop_writer()
            return
        with self._writer:
            self._drop_writer()

    @contextmanager
    def transaction(self) -> Iterator[SqlTx]:
        """A write transaction on a driver cursor: committed on success, else rolled back.

        On SQLite, threads of this process queue for the one writer, and the transaction
        runs on the writer connection kept between calls (:meth:`_writer_connection`; on a
        host's engine, one borrowed for the transaction alone, so a waiting writer holds
        none of the host's). On PostgreSQL the connection is borrowed for the
        transaction alone, and (psycopg) the transaction runs in pipeline mode: a
        statement goes out when it is executed, and the client waits only where it
        reads rows (the case row, locked) and at the end, where the COMMIT goes with the
        writes before it. A fire is two round trips that way, not six. A long
        transaction reads its results back every so many statements
        (:mod:`casework.storage.pipeline_pace`). A statement's error is raised where its
        results come back, at a read, at such a sync or at the end, and the COMMIT after
        a failed statement is never run."""
        self._not_in_group()
        with self._writer, self._writer_connection() as raw:
            plain = raw.cursor()
            cursor = cursor_for(plain, self.engine)
            try:
                if self.pipelined:
                    with raw.driver_connection.pipeline() as pipeline:
                        paced = PacedCursor(cursor, pipeline)
                        yield from self._pipelined(raw, plain, paced)
                else:
                    self.dialect.begin_write(cursor)
                    if self._read_only_per_transaction:  # behind a bouncer: per transaction
                        cursor.execute("SET TRANSACTION READ ONLY")
                    try:
                        yield SqlTx(cursor)
                    except BaseException:
                        self.dialect.end_write(raw, cursor, commit=False)
                        raise
                    self.dialect.end_write(raw, cursor, commit=True)
            except self._integrity_error as err:
                roll_back_or_drop(raw)
                raise WriteConflict(str(err).strip().splitlines()[0]) from err
            except self.driver_error as err:
                raw.invalidate()
                raise StorageError(
                    str(err).strip().splitlines()[0], read_only=refuses_writes(err)
                ) from err
            finally:
                with contextlib.suppress(Exception):  # the connection may be invalidated
                    cursor.close()

    def _pipelined(self, raw: Any, plain: Any, cursor: Any) -> Iterator[SqlTx]:
        """The body of a pipelined transaction on ``cursor`` (``plain``: the driver's own
        under it): the COMMIT (or ROLLBACK) is queued, never prepared, and goes out with
        the pipeline's closing sync, which reads every result left."""
        if self._read_only_per_transaction:  # behind a bouncer: per transaction
            cursor.execute("SET TRANSACTION READ ONLY")
        ahead = None if self.read_with_lock is None else cursor_for(raw.cursor(), self.engine)
        try:
            try:
                yield SqlTx(cursor, ahead)
            except self.driver_error:  # the transaction failed: rolled back after the sync
                raise
            except BaseException:
                plain.execute("ROLLBACK", prepare=False)
                raise
            plain.execute("COMMIT", prepare=False)
        finally:
            if ahead is not None:
                ahead.close()

    def sent_with_lock(self, tx: Tx) -> None:
        """Send :attr:`read_with_lock` now, right after a case lock, on a pipelined
        transaction (nothing otherwise): under READ COMMITTED it runs once the lock is
        granted, so it sees what was committed while the lock was waited for."""
        ahead = cast("SqlTx", tx).ahead
        if ahead is not None:
            statement = self.read_with_lock
            ahead.execute(statement)
            cast("SqlTx", tx).sent = statement

    def sent_ahead(self, tx: Tx, statement: str) -> Any:
        """The cursor holding the rows of ``statement`` if it was sent ahead in ``tx``
        (and not read since), else ``None``."""
        sql_tx = cast("SqlTx", tx)
        if sql_tx.sent != statement:
            return None
        sql_tx.sent = None
        return sql_tx.ahead

    def unjoinable(self, connection: Connection) -> str | None:
        """Why casework cannot write inside ``connection``'s transaction, if it cannot:
        another kind of database than the engine's, or no transaction begun."""
        if connection.dialect.name != self.engine.dialect.name:
            return (
                f"the connection is to {connection.dialect.name}, "
                f"the engine's database is {self.engine.dialect.name}"
            )
        if not connection.in_transaction():
            return "begin the transaction on the connection first"
        dbapi = connection.connection.dbapi_connection
        if self.sqlite and not getattr(dbapi, "in_transaction", True):
            # SAVEPOINT outside a transaction would begin one, and RELEASE commit it
            return (
                "the SQLite connection has no transaction begun: open casework on the "
                "host's engine (Engine.open(engine)) before its connections are made"
            )
        return None

    @contextmanager
    def joined(self, connection: Connection) -> Iterator[SqlTx]:
        """A transaction inside the host's transaction on ``connection``, which it began:
        what is written commits or rolls back with it, and it is neither committed nor
        closed here. The work runs in a savepoint, so that an error of casework's own
        (a case id taken, a race lost) takes back what this call wrote and leaves the
        host's transaction usable; nothing else is added to the host's transaction.
        Where casework has a schema of its own, the host's ``search_path`` is set to it
        for the savepoint and given back after."""
        problem = self.unjoinable(connection)
        if problem is not None:
            raise StorageError(problem)
        raw = connection.connection
        cursor = cursor_for(raw.cursor(), self.engine)
        try:
            cursor.execute("SAVEPOINT casework")
            hosts_path = None
            if self._schema is not None:  # undone by ROLLBACK TO SAVEPOINT on error
                cursor.execute("SELECT current_setting('search_path')")
                hosts_path = (cursor.fetchone() or ("",))[0]
                cursor.execute("SELECT set_config('search_path', %s, true)", (self._schema,))
            try:
                yield SqlTx(cursor)
            except BaseException:
                cursor.execute("ROLLBACK TO SAVEPOINT casework")
                cursor.execute("RELEASE SAVEPOINT casework")
                raise
            if hosts_path is not None:
                cursor.execute("SELECT set_config('search_path', %s, true)", (hosts_path,))
            cursor.execute("RELEASE SAVEPOINT casework")
        except self._integrity_error as err:
            raise WriteConflict(str(err).strip().splitlines()[0]) from err
        except self.driver_error as err:
            raise StorageError(
                str(err).strip().splitlines()[0], read_only=refuses_writes(err)
            ) from err
        finally:
            with contextlib.suppress(Exception):
                cursor.close()


class CaseRows:
    """The hot path of the case log: the statements that lock, insert and move case rows
    on, written once per dialect, and their conversions."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql
        dialect = sql.dialect
        mark = self._mark = dialect.mark
        json_mark = dialect.json_mark
        lock = dialect.lock
        self.select_case = f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE id = {mark}{lock}"
        self.read_case_sql = f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE id = {mark}"
        self.read_events_sql = (
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE case_id = {mark} ORDER BY seq"
        )

        def marks(columns: Sequence[str]) -> str:
            """The parameter marks of ``columns``, JSON ones cast as the dialect needs."""
            return ", ".join(json_mark if c in JSON_COLUMNS else mark for c in columns)

        values = marks(EVENT_COLUMNS)
        self.insert_event = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({values})"
        self._updates: dict[tuple[str, ...], tuple[str, Any]] = {}
        self._appends: dict[str, str] = {}
        self.sqlite = dialect.sqlite
        rest = [c for c in EVENT_COLUMNS if c != "case_id"]
        self._insert_moved = (
            f"INSERT INTO events (case_id, {', '.join(rest)}) VALUES ((SELECT id FROM moved), "
            f"{marks(rest)})"
        )
        self.insert_case_sql = (
            f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) VALUES ({marks(CASE_COLUMNS)})"
        )
        self._case_readers = [self._reader(c) for c in CASE_COLUMNS]
        self._event_readers = [self._reader(c) for c in EVENT_COLUMNS]
        self._event_binders = [(c, self._binder(c)) for c in EVENT_COLUMNS]
        self._moved_event_binders = [(c, b) for c, b in self._event_binders if c != "case_id"]
        self._case_binders = [(c, self._binder(c)) for c in CASE_COLUMNS]

    def _binder(self, column: str) -> Callable[[Any], Any] | None:
        """How a value of ``column`` goes to the driver (``None``: as it is)."""
        if column in TIME_COLUMNS:
            return self.sql.dialect.time
        if column in JSON_COLUMNS:
            return _dump_json
        return None

    @staticmethod
    def _reader(column: str) -> Callable[[Any], Any] | None:
        """How a value of ``column`` comes back from the driver (``None``: as it is)."""
        if column in TIME_COLUMNS:
            return _read_time
        if column in JSON_COLUMNS:
            return read_json
        return None

    def get(self, case_id: str) -> CaseRecord | None:
        """The case row as it is now, read without a lock on a borrowed connection."""
        with self.sql.reading_cursor(snapshot=False) as cursor:
            cursor.execute(self.read_case_sql, (case_id,))
            row = cursor.fetchone()
        return None if row is None else self._record(row)

    def with_events(self, case_id: str) -> tuple[CaseRecord | None, list[EventRecord]]:
        """The case row and its events, oldest first, from one snapshot, without a lock:
        what a page of one case reads, with no table classes loaded."""
        with self.sql.reading_cursor(snapshot=True) as cursor:
            cursor.execute(self.read_case_sql, (case_id,))
            row = cursor.fetchone()
            cursor.execute(self.read_events_sql, (case_id,))
            rows = cursor.fetchall()
        if row is None:
            return None, []
        readers = self._event_readers
        try:
            events = [EventRecord(*_converted(readers, e)) for e in rows]
        except ValueError as err:  # a column that does not parse: tampering, a broken copy
            raise MalformedRow(f"case {case_id}: an event of it does not parse ({err})") from None
        return self._record(row), events

    def load(self, tx: Tx, case_id: str) -> CaseRecord | None:
        """The case row, locked against other writers until the transaction ends."""
        cursor = cursor_of(tx)
        cursor.execute(self.select_case, (case_id,))
        if self.sql.read_with_lock is not None:
            self.sql.sent_with_lock(tx)
        row = cursor.fetchone()
        return None if row is None else self._record(row)

    def _record(self, row: Any) -> CaseRecord:
        readers = self._case_readers
        try:
            record = CaseRecord(*_converted(readers, row))
        except ValueError as err:  # a column that does not parse: tampering, a broken copy
            raise MalformedRow(f"case {row[0]}: a column of it does not parse ({err})") from None
        if record.channel and record.category:
            return record
        return replace(record, channel=record.channel or None, category=record.category or None)

    def load_many(self, tx: Tx, case_ids: list[str]) -> dict[str, CaseRecord]:
        """Several case rows, locked in id order against other writers (PostgreSQL)."""
        if not case_ids:
            return {}
        cursor = cursor_of(tx)
        marks = ", ".join(self._mark for _ in case_ids)
        lock = self.sql.dialect.lock
        cursor.execute(
            f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE id IN ({marks}) ORDER BY id{lock}",
            tuple(case_ids),
        )
        if self.sql.read_with_lock is not None:
            self.sql.sent_with_lock(tx)
        cases = (self._record(row) for row in cursor.fetchall())
        return {case.id: case for case in cases}

    def append_many(
        self,
        tx: Tx,
        events: Sequence[Mapping[str, Any]],
        updates: Sequence[tuple[Mapping[str, Any], int]],
    ) -> None:
        """Insert events and move their cases on, in order, for rows already locked."""
        if not events:
            return
        cursor = cursor_of(tx)
        cursor.executemany(self.insert_event, [_bound(self._event_binders, e) for e in events])
        rows = list(zip(events, updates, strict=True))
        kinds = {self._update_for(update)[0] for _, (update, _) in rows}
        if len(kinds) == 1:  # one statement for all: one round trip on PostgreSQL
            statement, binders = self._update_for(updates[0][0])
            cursor.executemany(
                statement,
                [(*_bound(binders, u), e["case_id"], expected) for e, (u, expected) in rows],
            )
            return
        for event, (update, expected) in rows:
            statement, binders = self._update_for(update)
            cursor.execute(statement, (*_bound(binders, update), event["case_id"], expected))

    def _update_for(self, update: Mapping[str, Any]) -> tuple[str, Any]:
        """The statement that moves a case row on with ``update``'s columns: always
        :data:`UPDATED_COLUMNS`, and those of :data:`OPTIONAL_COLUMNS` it names."""
        kind = tuple(c for c in OPTIONAL_COLUMNS if c in update) if len(update) > 7 else ()
        found = self._updates.get(kind)
        if found is None:
            columns = UPDATED_COLUMNS + kind
            mark, json_mark = self._mark, self.sql.dialect.json_mark
            sets = ", ".join(
                f"{c} = COALESCE({mark}, '')"  # stored as on insert: see UNDECLARED_AS_EMPTY
                if c in UNDECLARED_AS_EMPTY
                else f"{c} = {json_mark if c in JSON_COLUMNS else mark}"
                for c in columns
            )
            statement = f"UPDATE cases SET {sets} WHERE id = {mark} AND version = {mark}"
            found = self._updates[kind] = (statement, [(c, self._binder(c)) for c in columns])
        return found

    def _moved_with_event(self, update: Mapping[str, Any]) -> tuple[str, Any]:
        """PostgreSQL's statement that moves a case row on with ``update`` (where it is at
        the version expected) and inserts the event under the id of the row it moved."""
        statement, binders = self._update_for(update)
        found = self._appends.get(statement)
        if found is None:
            found = self._appends[statement] = (
                f"WITH moved AS ({statement} RETURNING id) {self._insert_moved}"
            )
        return found, binders

    def insert(self, tx: Tx, case: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """Store a new case row and its opening event."""
        stored = {"event_format": 1, **case, **{k: case[k] or "" for k in UNDECLARED_AS_EMPTY}}
        cursor = cursor_of(tx)
        cursor.execute(self.insert_case_sql, _bound(self._case_binders, stored))
        cursor.execute(self.insert_event, _bound(self._event_binders, event))

    def append(
        self, tx: Tx, event: Mapping[str, Any], update: Mapping[str, Any], *, expected: int
    ) -> bool:
        """Insert the event and move the case row on; ``False`` if it had moved already
        (on PostgreSQL: ``True``, and :class:`WriteConflict` from the transaction)."""
        cursor = cursor_of(tx)
        if self.sqlite:
            cursor.execute(self.insert_event, _bound(self._event_binders, event))
            statement, binders = self._update_for(update)
            cursor.execute(statement, (*_bound(binders, update), event["case_id"], expected))
            return bool(cursor.rowcount == 1)
        # One statement on PostgreSQL, whose result need not be waited for: a row that
        # had moved on gives the event no case id, which the key refuses.
        statement, binders = self._moved_with_event(update)
        cursor.execute(
            statement,
            (*_bound(binders, update), event["case_id"], expected,
             *_bound(self._moved_event_binders, event)),
        )  # fmt: skip
        return True


_BEGUN: weakref.WeakSet[TransitionSQL] = weakref.WeakSet()
"""Every engine's connections, begun anew in a forked process."""


def _begun_anew_in_child() -> None:
    """In a process just forked: each engine's writer state begun anew
    (:meth:`TransitionSQL._after_fork`)."""
    for sql in list(_BEGUN):
        sql._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_begun_anew_in_child)


_INHERITED: list[KeptConnection] = []
"""Writer connections a forked process found open: the parent's, kept from being closed
(SQLite's connections must not be used, nor closed, across a fork)."""


class KeptConnection:
    """A driver connection casework keeps for itself, out of any pool, with what a
    write transaction asks of a pooled one."""

    __slots__ = ("driver_connection", "is_valid")

    def __init__(self, driver_connection: Any) -> None:
        self.driver_connection = driver_connection
        self.is_valid = True

    def cursor(self) -> Any:
        """A cursor of the driver's."""
        return self.driver_connection.cursor()

    def rollback(self) -> None:
        """Roll back what is open."""
        self.driver_connection.rollback()

    def invalidate(self) -> None:
        """Close it for good (it failed, or its engine is closing)."""
        self.is_valid = False
        with contextlib.suppress(Exception):
            self.driver_connection.close()


def _left_clean(raw: Any) -> bool:
    """Whether a connection a failed transaction ran on can be used again: valid, and
    out of any transaction."""
    try:
        return bool(raw.is_valid) and not raw.driver_connection.in_transaction
    except Exception:  # closed under it, say
        return False


def _bound(
    binders: list[tuple[str, Callable[[Any], Any] | None]], values: Mapping[str, Any]
) -> tuple[Any, ...]:
    return tuple(
        value if bind is None or value is None else bind(value)
        for column, bind in binders
        for value in (values[column],)
    )


def _converted(readers: list[Callable[[Any], Any] | None], row: Any) -> Iterator[Any]:
    """A row's values as records hold them, each through its column's reader."""
    return (v if r is None or v is None else r(v) for r, v in zip(readers, row, strict=True))


def _dump_json(value: Any) -> str:
    """A stored column's JSON; a str is taken as JSON already encoded."""
    return value if isinstance(value, str) else column_json(value)


def read_json(value: Any) -> Any:
    """A JSON column's value: parsed from text (SQLite), as the driver gave it otherwise."""
    return parse_json(value) if isinstance(value, str) else value


def _read_time(value: Any) -> datetime:
    """A stored time: ISO 8601 text with its offset (SQLite), aware from the driver else;
    a ``ValueError`` for one without an offset, as :mod:`casework.storage.timestamps` reads it."""
    if not isinstance(value, str):
        return as_utc(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"a stored time has no offset: {value[:64]!r}")
    return moment
