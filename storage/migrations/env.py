"""Alembic environment: runs on the connection that
:func:`casework.storage.migrate.upgrade` hands in."""

from __future__ import annotations

from alembic import context

from casework.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("casework migrations run through storage.migrate.upgrade(engine)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    version_table=context.config.attributes.get("version_table", "casework_alembic_version"),
)
context.run_migrations()
