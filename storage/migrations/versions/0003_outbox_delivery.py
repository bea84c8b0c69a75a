"""Outbox delivery: claim leases, quiet-hour holds and the record of each sending.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casework.storage.timestamps import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the lease, hold and sent columns to the outbox."""
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("lease_token", sa.String(32), nullable=True))
        batch.add_column(sa.Column("held_until", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("sent_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("message_id", sa.String(250), nullable=True))


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    with op.batch_alter_table("outbox") as batch:
        for name in ("message_id", "sent_at", "held_until", "lease_token"):
            batch.drop_column(name)
