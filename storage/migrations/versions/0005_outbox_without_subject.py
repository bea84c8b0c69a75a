"""The outbox keeps no subject: mails are written from templates when they are sent.

The English subject stored with each row was never sent (the rendered subject, in the
mail's language, is); keeping it only invited someone to read the wrong one.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Drop the stored subject."""
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("subject")


def downgrade() -> None:
    """Bring the column back, empty."""
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("subject", sa.String(400), nullable=False, server_default=""))
