"""SLA clocks on cases, stored policies, durable deadlines and the mail outbox.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casework.storage.timestamps import UTCDateTime

CASE_ID = sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the SLA columns and the three tables."""
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("sla_policy", sa.String(16), nullable=True))
        batch.add_column(sa.Column("sla", sa.JSON, nullable=False, server_default="{}"))
    op.create_table(
        "sla_policies",
        sa.Column("version", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("stored_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "deadlines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("case_id", CASE_ID, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("clock", sa.String(64), nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("case_id", "clock", "cycle", "level", name="uq_deadlines_key"),
    )
    op.create_index("ix_deadlines_status_due", "deadlines", ["status", "due_at"])
    op.create_index("ix_deadlines_case_id", "deadlines", ["case_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("case_id", CASE_ID, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("deadline_id", sa.BigInteger, sa.ForeignKey("deadlines.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.String(2000), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    op.drop_table("outbox")
    op.drop_table("deadlines")
    op.drop_table("sla_policies")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("sla")
        batch.drop_column("sla_policy")
