"""Bringing a database's schema up to date with Alembic, safely from several processes."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from storage.database import write_transaction

MIGRATIONS = Path(__file__).parent / "migrations"
PG_MIGRATION_LOCK = 0x636173657764  # an arbitrary advisory-lock key: "casewd"


def alembic_config() -> Config:
    """The Alembic configuration of the casework schema."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """The newest migration revision."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
        return revision


def upgrade(engine: Engine) -> None:
    """Migrate to the newest revision in one transaction (a no-op when current).

    SQLite takes its write lock at BEGIN; PostgreSQL takes an advisory lock, so two
    processes opening a fresh database at once do not both create it.
    """
    head = head_revision()
    if current_revision(engine) == head:
        return
    config = alembic_config()
    with write_transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
