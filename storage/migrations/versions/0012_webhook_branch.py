"""A webhook subscription's branch: a subscription made by a branch token hears only
that branch's cases.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``webhooks.branch`` (none: every branch, as every existing subscription)."""
    with op.batch_alter_table("webhooks") as batch:
        batch.add_column(sa.Column("branch", sa.String(200), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("webhooks") as batch:
        batch.drop_column("branch")
