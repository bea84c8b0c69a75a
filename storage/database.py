"""Creating the SQLAlchemy engine: SQLite settings, write transactions, URL handling."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError

from casework.storage.chain import column_json, parse_json
from casework.storage.errors import MalformedRow, UnusableName
from casework.storage.table_prefix import TablePrefix, prefix_of, use_prefix

SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_CACHE_KIB = 32_768
"""Page cache per connection: large tables stay warm for the worker's random reads."""
WRITE = {"casework_begin": "IMMEDIATE"}
"""Execution options of a write transaction: SQLite takes the write lock at BEGIN."""
ALIVE_BYPASS_S = 0.5
"""A pooled PostgreSQL connection returned less than this many seconds ago is handed
out without a ping, as HikariCP's ``aliveBypassWindowMs`` does: a connection borrowed
for each transaction of a busy process costs no extra round trip, while one idle
longer is pinged, and replaced if the server dropped it."""
_RETURNED = "casework_returned_at"


HostConnection = Connection
"""A SQLAlchemy connection a host hands in with a transaction it began on it, for
casework to write inside (``Engine.fire(..., connection=conn)``)."""


AFTER_COMMIT = "casework_after_commit"
"""Key in a connection's ``info`` of what runs once casework's own commit of a shared
transaction succeeded (:meth:`casework.storage.sql_store.SqlStore.grouped`)."""


def after_commit(connection: Connection | None, then: Callable[[], None]) -> None:
    """Call ``then()`` when the transaction on ``connection`` commits; never if it rolls
    back (whichever comes first decides). In casework's own shared transaction, once its
    commit succeeded; in a host's, at SQLAlchemy's ``commit`` event, just before the
    database commits; without a ``connection`` (casework committed its own transaction
    already), at once."""
    if connection is None:
        then()
        return
    queued = connection.info.get(AFTER_COMMIT)
    if queued is not None:
        queued.append(then)
        return
    ended: list[bool] = []

    def committed(_conn: Connection) -> None:
        if not ended:
            ended.append(True)
            then()

    def rolled_back(_conn: Connection) -> None:
        ended.append(False)

    event.listen(connection, "commit", committed, once=True)
    event.listen(connection, "rollback", rolled_back, once=True)


def is_sqlite(engine: Engine) -> bool:
    """Whether the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def make_engine(
    url: str,
    *,
    read_only: bool = False,
    schema: str | None = None,
    table_prefix: str | None = None,
) -> Engine:
    """An engine for ``url``; ``postgresql://`` uses psycopg 3.

    SQLite gets WAL, ``synchronous=FULL``, foreign keys and a busy timeout, and its
    transactions are begun by us so that a write transaction locks at BEGIN. A
    PostgreSQL connection is pinged on checkout once it has been idle in the pool past
    :data:`ALIVE_BYPASS_S`. With
    ``read_only`` the database itself refuses writes: SQLite opens the file with
    ``mode=ro``, PostgreSQL sessions start with ``default_transaction_read_only``.

    A PostgreSQL URL with ``pool_mode=transaction`` goes through a transaction-pooling
    bouncer (pgbouncer): nothing may rely on a session, so statements are never
    prepared on the server and read-only is set per transaction.

    A ``schema`` (PostgreSQL) holds casework's tables apart from a host application's
    in the same database: every session of this engine finds its tables there first
    (``search_path``), so every statement, raw or not, and every migration follows.
    ``None`` or ``public`` is the database's default schema, as before. A
    ``table_prefix`` puts casework's names under a prefix instead, on any database
    (:mod:`casework.storage.table_prefix`).

    In a process forked from this one the engine has a new pool: the connections the
    parent pooled stay the parent's, neither used nor closed.
    """
    try:
        parsed = make_url(url)
    except ValueError as err:  # a port that is no number, say
        raise ArgumentError(f"cannot parse the URL: {err}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    sqlite = parsed.get_backend_name() == "sqlite"
    connect_args: dict[str, Any] = {}
    pooled = parsed.query.get(POOL_MODE) == "transaction"
    if POOL_MODE in parsed.query:
        parsed = parsed.difference_update_query([POOL_MODE])
    if pooled:
        connect_args["prepare_threshold"] = None  # a prepared statement is session state
    schema = None if schema in (None, "", "public") else schema
    if schema is not None:
        if sqlite:
            raise UnusableName("a schema is PostgreSQL's (`schema`); SQLite has none")
        if pooled:
            raise UnusableName(
                "a schema needs a session setting, which pool_mode=transaction cannot keep: "
                "set the role's search_path instead (ALTER ROLE ... SET search_path)"
            )
        if not SCHEMA_NAME.fullmatch(schema):
            raise UnusableName(f"{schema!r} is no schema name (lower-case letters, digits, _)")
        connect_args["options"] = f"-c search_path={schema}"
    if read_only and sqlite and parsed.database not in (None, "", ":memory:"):
        path = str(parsed.database)
        if not path.startswith("file:"):  # else already a URI (from a read-only engine)
            parsed = parsed.set(database=f"file:{path}?mode=ro", query={"uri": "true"})
    elif read_only and not sqlite and not pooled:
        read_only_option = "-c default_transaction_read_only=on"
        connect_args["options"] = f"{connect_args.get('options', '')} {read_only_option}".strip()
    tables = TablePrefix(table_prefix) if table_prefix else None  # refused before a file is made
    new_file = sqlite_file(url)
    if sqlite and not read_only and new_file is not None and not os.path.exists(new_file):
        # Created private: it holds personal data (SQLite gives its -wal and -shm files
        # the database file's permissions).
        with contextlib.suppress(OSError):  # a missing folder is said when it connects
            os.close(os.open(new_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    engine = create_engine(
        parsed,
        json_serializer=column_json,
        json_deserializer=stored_json,
        connect_args=connect_args,
        # PostgreSQL: rolled back on return only if a transaction is open (_reset_when_open)
        pool_reset_on_return="rollback" if sqlite else None,
    )
    if not sqlite:
        _ping_when_idle(engine)
        _reset_when_open(engine)
    engine._casework_read_only = read_only  # type: ignore[attr-defined]
    engine._casework_schema = schema  # type: ignore[attr-defined]
    engine._casework_pooled = pooled  # type: ignore[attr-defined]
    engine._casework_own = True  # type: ignore[attr-defined]
    if pooled and read_only:

        @event.listens_for(engine, "begin")
        def _read_only(conn: Connection) -> None:  # per transaction: the session is shared
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    prepare_engine(engine)
    _OWN_ENGINES.add(engine)
    return use_prefix(engine, tables)


_OWN_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
"""The engines casework made, whose pools a forked process replaces."""


def _pools_replaced_in_child() -> None:
    """In a process just forked: each engine casework made gets a new pool, and the
    connections the parent pooled are left be, neither used nor closed (a SQLite or
    PostgreSQL connection carried across a fork is still the parent's). SQLAlchemy's way
    across a fork; a host's engine is the host's to look after."""
    for engine in list(_OWN_ENGINES):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pools_replaced_in_child)


def stored_json(text: str | bytes) -> Any:
    """A stored JSON column's value (psycopg hands the JSON deserializer bytes);
    :class:`MalformedRow` for text that is no JSON (a SQLite row edited by hand or a
    broken copy), never a bare decoding error."""
    try:
        return parse_json(text)
    except ValueError:
        raise MalformedRow(f"a stored JSON value does not parse: {text[:64]!r}") from None


def _ping_when_idle(engine: Engine) -> None:
    """Ping a connection on checkout when it has been idle in the pool past
    :data:`ALIVE_BYPASS_S` (SQLAlchemy's recipe for a pessimistic ping of one's own: a
    :class:`DisconnectionError` makes the pool replace the connection and try again)."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _handed_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED)  # none: connected just now
        if returned is None or time.monotonic() - returned < ALIVE_BYPASS_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as err:  # whatever the ping met, this connection is done
            raise DisconnectionError(f"the pooled connection is gone: {err}") from err


def _reset_when_open(engine: Engine) -> None:
    """Roll a PostgreSQL connection back as it returns to the pool only if a transaction
    is still open on it: the pool's own reset calls the driver's rollback every time,
    though a committed transaction leaves the connection idle. Set on casework's own
    engines only; a host's engine keeps its pool's reset."""
    from psycopg.pq import TransactionStatus

    idle = TransactionStatus.IDLE

    @event.listens_for(engine, "reset")
    def _returned(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        if dbapi_connection.pgconn.transaction_status != idle:
            dbapi_connection.rollback()


def is_in_memory(url: str) -> bool:
    """Whether ``url`` names a SQLite database that lives in memory only."""
    try:
        parsed = make_url(url)
    except (ValueError, ArgumentError):
        return False
    if parsed.get_backend_name() != "sqlite":
        return False
    return sqlite_file(url) is None


def libpq_url(url: str) -> str:
    """A PostgreSQL URL as libpq and psycopg take it: without SQLAlchemy's driver name."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names (``None``: not SQLite, or in memory)."""
    try:
        parsed = make_url(url)
    except (ValueError, ArgumentError):
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = str(parsed.database).removeprefix("file:").split("?", 1)[0]
    return None if path in ("", ":memory:") or "mode=memory" in str(parsed) else path


POOL_MODE = "pool_mode"
"""The URL parameter saying the server is reached through a pooling bouncer."""


def is_pooled(engine: Engine) -> bool:
    """Whether the engine reaches PostgreSQL through a transaction-pooling bouncer."""
    return bool(getattr(engine, "_casework_pooled", False))


SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
"""A schema casework may be given: a plain PostgreSQL name, never quoted."""


def is_own(engine: Engine) -> bool:
    """Whether casework made the engine (and its pool) itself, rather than a host."""
    return bool(getattr(engine, "_casework_own", False))


def schema_of(engine: Engine) -> str | None:
    """The schema casework's tables are in (``None``: the database's default)."""
    return getattr(engine, "_casework_schema", None)


def tables_of(engine: Engine) -> tuple[str | None, str | None]:
    """Where ``engine``'s tables are: its PostgreSQL schema and its table prefix (each
    ``None`` if it has none), to open another engine on the same tables."""
    tables = prefix_of(engine)
    return schema_of(engine), None if tables is None else tables.prefix


def is_read_only(engine: Engine) -> bool:
    """Whether the engine was made with ``read_only``."""
    return bool(getattr(engine, "_casework_read_only", False))


def driver_errors() -> tuple[type[Exception], ...]:
    """What a driver raises when it is used directly (raw cursors, snapshots): the base
    error classes of the drivers loaded so far (one not loaded raised nothing, and
    asking costs no import)."""
    found: list[type[Exception]] = [sqlite3.Error]
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        found.append(psycopg.Error)
    return tuple(found)


_AUTOCOMMIT = "casework_autocommit"


def _in_autocommit(raw: Any) -> bool:
    """Whether a pooled connection's driver runs each statement in a transaction of its
    own (psycopg's ``autocommit``)."""
    return getattr(raw.driver_connection, "autocommit", None) is True


def borrow(engine: Engine) -> Any:
    """A driver connection from ``engine``'s pool, out of autocommit while casework holds
    it: a host's engine made with ``isolation_level="AUTOCOMMIT"`` hands its connections
    out so, and casework's statements must commit together. :func:`hand_back` returns
    it as it came."""
    raw: Any = engine.raw_connection()
    if _in_autocommit(raw) and not is_sqlite(engine):
        raw.driver_connection.autocommit = False  # (SQLite's BEGIN is casework's own)
        raw.info[_AUTOCOMMIT] = True
    return raw


def hand_back(raw: Any) -> None:
    """Return a connection :func:`borrow` took to its pool, in autocommit again if it
    came so (one that cannot be put back so, still in a transaction, is dropped)."""
    if raw.info.pop(_AUTOCOMMIT, False) and raw.is_valid:
        try:
            raw.driver_connection.autocommit = True
        except driver_errors():
            raw.invalidate()
    raw.close()


def in_transactions(engine: Engine) -> Engine:
    """``engine``, or, where its connections come in autocommit (a host's engine made
    with ``isolation_level="AUTOCOMMIT"``, or given it as an execution option), a copy
    sharing its pool whose transactions (:func:`write_transaction`,
    :func:`read_transaction`) set the database's default level on their connection
    first; SQLAlchemy puts autocommit back when the connection is returned."""
    if is_sqlite(engine):
        return engine
    raw = engine.raw_connection()  # (the first connection also tells the default level)
    try:
        autocommit = _in_autocommit(raw)
    finally:
        raw.close()
    if not autocommit and engine.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        return engine
    level = engine.dialect.default_isolation_level or "READ COMMITTED"
    return engine.execution_options(**{ISOLATION: level})


ISOLATION = "casework_isolation"
"""The execution option that names the level casework's transactions take on a
connection (an engine's own ``isolation_level`` option, set higher up, would win)."""


def _in_transaction_mode(conn: Connection) -> Connection:
    level = conn.get_execution_options().get(ISOLATION)
    return conn if level is None else conn.execution_options(isolation_level=level)


READ_ONLY_SQLSTATE = "25006"
"""PostgreSQL's read_only_sql_transaction: a hot standby, or a read-only session."""


def roll_back_or_drop(raw: Any) -> None:
    """Roll a pooled driver connection back; one the rollback finds broken (the server
    or the network cut it) is invalidated instead, so its pool drops it rather than
    keep it or log its failed reset."""
    try:
        raw.rollback()
    except driver_errors():
        raw.invalidate()


def refuses_writes(err: BaseException) -> bool:
    """Whether a driver (or SQLAlchemy) error says the database refuses to write: a
    read-only SQLite file or URI, a PostgreSQL hot standby or read-only session."""
    orig = getattr(err, "orig", None) or err.__cause__ or err
    if getattr(orig, "sqlstate", None) == READ_ONLY_SQLSTATE:
        return True
    text = str(orig).lower()
    return "readonly database" in text or "read-only transaction" in text


def write_access(engine: Engine) -> str | None:
    """What write access this connection's user has, if any, to say it is not needed.

    A PostgreSQL hot standby, or a session that is read-only, has none, whatever the
    role's privileges say."""
    if is_sqlite(engine):
        path = engine.url.database or ""
        path = path.removeprefix("file:").split("?", 1)[0]
        if path and os.access(path, os.W_OK):
            return f"the database file {path} is writable by this user"
        return None
    with engine.connect() as conn:
        can = conn.exec_driver_sql(
            "SELECT NOT pg_is_in_recovery() "
            "AND NOT EXISTS (SELECT 1 FROM pg_db_role_setting s WHERE s.setdatabase IN "
            "(0, (SELECT oid FROM pg_database WHERE datname = current_database())) "
            "AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = current_user)) "
            "AND 'default_transaction_read_only=on' = ANY(s.setconfig)) "
            "AND (has_table_privilege(%s, 'INSERT') "
            "OR has_table_privilege(%s, 'UPDATE') OR has_table_privilege(%s, 'DELETE'))",
            ("events", "cases", "events"),  # prefixed, if casework's tables are
        ).scalar()
        conn.rollback()
    return "this database role may write to the events and cases tables" if can else None


def prepare_engine(engine: Engine) -> None:
    """Install the SQLite connection settings on an engine we did not create."""
    if not is_sqlite(engine) or getattr(engine, "_casework_prepared", False):
        return
    engine._casework_prepared = True  # type: ignore[attr-defined]
    in_memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if not in_memory and not is_read_only(engine):
            _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # deleted content is overwritten with zeros: an erased customer's values do not
        # linger in free pages or free space inside a page
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("casework_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _enable_wal(cursor: Any) -> None:
    """Put the file in WAL mode, waiting out another process that holds the lock.

    Switching a new file to WAL needs an exclusive lock, and SQLite answers "database is
    locked" at once there instead of calling the busy handler; so it is retried here
    for as long as the busy timeout allows. A file already in WAL mode needs nothing.
    """
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on error."""
    with engine.connect() as conn:
        conn = _in_transaction_mode(conn).execution_options(**WRITE)
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction giving one consistent snapshot."""
    with engine.connect() as conn, _in_transaction_mode(conn).begin():
        yield conn
