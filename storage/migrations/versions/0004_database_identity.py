"""A table of facts about the database itself, starting with its random identity.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``casework_meta`` and give the database its identity."""
    meta = op.create_table(
        "casework_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(400), nullable=False),
    )
    op.bulk_insert(meta, [{"key": "database_id", "value": uuid.uuid4().hex}])


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    op.drop_table("casework_meta")
