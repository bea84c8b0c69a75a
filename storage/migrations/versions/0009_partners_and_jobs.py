"""Partners (installers, repairers, manufacturers) and dispatched jobs.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casework.storage.timestamps import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``partners`` and ``jobs``."""
    op.create_table(
        "partners",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("branch", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("branch", sa.String(200), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("partner", sa.String(100), nullable=True),
        sa.Column("done_at", UTCDateTime(), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
    )
    op.create_index("ix_jobs_done_at", "jobs", ["done_at"])


def downgrade() -> None:
    """Drop ``jobs`` and ``partners``."""
    op.drop_index("ix_jobs_done_at", table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("partners")
