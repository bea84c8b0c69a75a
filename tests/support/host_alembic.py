"""A host application with an Alembic history of its own, for tests of casework living
beside it in one database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

HOST_ENV = """from alembic import context

context.configure(connection=context.config.attributes["connection"], target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
"""
"""The host's Alembic environment: it runs on the connection it is handed."""


def host_migrates(url: str, folder: Path, migration: str, *statements: str) -> None:
    """The host's history (``migration``, revision ``host0001``, in ``folder``; its
    revision in ``alembic_version``) brought up, then ``statements`` run in the same
    transaction."""
    from alembic import command
    from alembic.config import Config

    (folder / "versions").mkdir(parents=True, exist_ok=True)
    (folder / "env.py").write_text(HOST_ENV)
    (folder / "versions" / "host0001.py").write_text(migration)
    config = Config()
    config.set_main_option("script_location", str(folder))
    made = create_engine(url)
    with made.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        for statement in statements:
            conn.execute(text(statement))
    made.dispose()
