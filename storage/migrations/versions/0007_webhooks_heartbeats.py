"""Webhook subscriptions, worker heartbeats, and outbox rows that belong to no deadline.

A webhook delivery joins the outbox in the transaction of its event, beside the mails;
it tells of an event, not of a deadline, so ``outbox.deadline_id`` may now be empty.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casework.storage.timestamps import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``webhooks`` and ``worker_heartbeats``; let outbox rows have no deadline."""
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker", sa.String(100), primary_key=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("beat_at", UTCDateTime(), nullable=False),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("deadline_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    """Drop what :func:`upgrade` added (webhook deliveries with it)."""
    op.execute("DELETE FROM outbox WHERE deadline_id IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("deadline_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("worker_heartbeats")
    op.drop_table("webhooks")
