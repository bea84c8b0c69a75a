"""Bringing a database's schema up to date with Alembic, safely from several processes.

Opening a database whose schema is current costs one query (:func:`current_revision`
reads ``casework_alembic_version``); Alembic itself is imported only when there is work
to do. casework keeps its revision in a version table of its own, so that a host
application's Alembic history (``alembic_version``) can live in the same database; a
database migrated before keeps its revision there until the next upgrade moves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from casework.storage.database import schema_of, write_transaction
from casework.storage.dialect import dialect_of
from casework.storage.errors import SchemaConflict
from casework.storage.table_prefix import TablePrefix, prefix_of

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0014"
"""The newest migration revision this code needs (a test holds it equal to Alembic's head)."""
VERSION_TABLE = "casework_alembic_version"
"""Where casework's revision is kept (Alembic's ``version_table``)."""
SHARED_VERSION_TABLE = "alembic_version"
"""Alembic's default version table: casework's before it had its own, and a host's."""


def alembic_config() -> Config:
    """The Alembic configuration of the casework schema."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["version_table"] = VERSION_TABLE
    return config


def head_revision() -> str | None:
    """The newest migration revision, as Alembic finds it among the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _version_in(conn: Connection, table: str) -> str | None:
    """The revision in version table ``table`` (``None``: no table, or no row)."""
    try:
        revision = conn.execute(text(f"SELECT version_num FROM {table}")).scalar()  # noqa: S608
    except DBAPIError:
        revision = None  # no such table
    conn.rollback()
    return None if revision is None else str(revision)


def casework_revisions() -> frozenset[str]:
    """Every revision among casework's migration scripts."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


def revision_of(engine: Engine) -> tuple[str | None, bool]:
    """The revision the database is at (``None`` for an empty database) and whether it
    is kept in casework's own version table: one query when that table exists; else
    ``alembic_version`` is read, where a database migrated before casework had a
    version table of its own keeps its revision (until :func:`upgrade` moves it), unless
    casework's tables have a prefix (``alembic_version`` is then the host's)."""
    with engine.connect() as conn:
        revision = _version_in(conn, VERSION_TABLE)
        if revision is not None or prefix_of(engine) is not None:
            return revision, True  # casework's tables under a prefix never used the shared
        shared = _version_in(conn, SHARED_VERSION_TABLE)
    return (shared if shared is not None and shared in casework_revisions() else None), False


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    return revision_of(engine)[0]


def is_current(engine: Engine) -> bool:
    """Whether the schema is at :data:`HEAD`, kept in casework's own version table."""
    return revision_of(engine) == (HEAD, True)


def upgrade(engine: Engine) -> None:
    """Migrate to the newest revision in one transaction (a no-op when current).

    SQLite takes its write lock at BEGIN; PostgreSQL takes an advisory lock, so two
    processes opening a fresh database at once do not both create it.
    """
    if is_current(engine):
        return
    from alembic import command

    config = alembic_config()
    schema = schema_of(engine)
    with write_transaction(engine) as conn:
        lock = dialect_of(engine).migration_lock
        if lock is not None:
            conn.execute(text(lock))
        if schema is not None:
            quoted = conn.dialect.identifier_preparer.quote_schema(schema)
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
        _adopt_shared_version(conn, schema)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _adopt_shared_version(conn: Connection, schema: str | None) -> None:
    """Before the first upgrade into casework's own version table: move casework's
    revision out of ``alembic_version`` (dropping that table if nothing else is in it),
    or refuse a database that is another application's (:class:`SchemaConflict`)."""
    prefix = prefix_of(conn)
    tables = set(inspect(conn).get_table_names(schema=schema))
    if _named(prefix, VERSION_TABLE) in tables:
        return
    shared: list[str] = []
    if SHARED_VERSION_TABLE in tables and prefix is None:  # else the host's
        found = conn.execute(text(f"SELECT version_num FROM {SHARED_VERSION_TABLE}"))  # noqa: S608
        shared = [str(r) for r in found.scalars()]
    mine = [r for r in shared if r in casework_revisions()]
    if mine:
        conn.execute(
            text(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        )
        moved = {"v": mine[0]}
        conn.execute(text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"), moved)  # noqa: S608
        conn.execute(text(f"DELETE FROM {SHARED_VERSION_TABLE} WHERE version_num = :v"), moved)  # noqa: S608
        if len(shared) == 1:
            conn.execute(text(f"DROP TABLE {SHARED_VERSION_TABLE}"))
        return
    where = f"schema {schema}" if schema is not None else "the database"
    if shared:
        raise SchemaConflict(
            f"{where} holds another application's Alembic history ({SHARED_VERSION_TABLE} "
            f"at revision {shared[0]}, none of casework's) and no casework version table: "
            f"{_apart(conn)}"
        )
    from casework.storage.tables import metadata

    taken = sorted(tables & {_named(prefix, name) for name in metadata.tables})
    if taken:
        raise SchemaConflict(
            f"{where} has tables casework needs that are not casework's (no casework "
            f"version table): {', '.join(taken)}; {_apart(conn)}"
        )


def _apart(conn: Connection) -> str:
    """How casework keeps apart from another application's tables (SQLite has no schemas)."""
    prefix = "a table prefix (`table_prefix`)"
    if conn.dialect.name == "sqlite":
        return f"give casework {prefix}"
    return f"give casework a schema of its own (`schema`) or {prefix}"


def _named(prefix: TablePrefix | None, name: str) -> str:
    return name if prefix is None else prefix.name(name)
