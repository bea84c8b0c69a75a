"""Bringing a database's schema up to date with Alembic, safely from several processes.

Opening a database whose schema is current costs one query (:func:`current_revision`
reads ``alembic_version``); Alembic itself is imported only when there is work to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from casework.storage.database import write_transaction
from casework.storage.dialect import dialect_of

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0014"
"""The newest migration revision this code needs (a test holds it equal to Alembic's head)."""


def alembic_config() -> Config:
    """The Alembic configuration of the casework schema."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """The newest migration revision, as Alembic finds it among the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database): one query."""
    with engine.connect() as conn:
        try:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:
            revision = None  # no alembic_version table: nothing was ever migrated
        conn.rollback()
        return None if revision is None else str(revision)


def is_current(engine: Engine) -> bool:
    """Whether the schema is at :data:`HEAD`."""
    return current_revision(engine) == HEAD


def upgrade(engine: Engine) -> None:
    """Migrate to the newest revision in one transaction (a no-op when current).

    SQLite takes its write lock at BEGIN; PostgreSQL takes an advisory lock, so two
    processes opening a fresh database at once do not both create it.
    """
    if is_current(engine):
        return
    from alembic import command

    config = alembic_config()
    with write_transaction(engine) as conn:
        lock = dialect_of(engine).migration_lock
        if lock is not None:
            conn.execute(text(lock))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
