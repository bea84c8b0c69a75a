"""Personal columns kept out of PostgreSQL's planner statistics: ``ANALYZE`` would copy
their most common values and histogram bounds into ``pg_statistic`` (``pg_stats``),
where an erasure cannot reach them.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

PERSONAL = (
    ("cases", "customer"),
    ("cases", "contact"),
    ("personal_data", "value"),
    ("subjects", "secret"),
    ("outbox", "last_error"),
)
"""The text columns that hold personal values (or the secrets that key them)."""


def upgrade() -> None:
    """On PostgreSQL: no statistics gathered for :data:`PERSONAL` from now on, and those
    gathered before dropped (altering a column to its own type drops them)."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite keeps statistics only when asked to (ANALYZE), and casework never is
    for table, column in PERSONAL:
        kind = bind.execute(
            sa.text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = CAST(:table AS regclass) AND attname = :column"
            ),
            {"table": table, "column": column},
        ).scalar_one()
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS 0")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {kind}")


def downgrade() -> None:
    """Statistics gathered for them again."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in PERSONAL:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS -1")
