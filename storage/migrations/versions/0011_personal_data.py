"""Personal data kept out of the hashed history: ``subjects`` (a secret per customer),
``personal_data`` (the values), and each case's canonical event format.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casework.storage.timestamps import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``cases.event_format`` (1 for every existing history), ``subjects`` and
    ``personal_data``."""
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("event_format", sa.Integer(), nullable=False,
                                   server_default="1"))  # fmt: skip
    op.create_table(
        "subjects",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "personal_data",
        sa.Column("case_id", sa.String(40), sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("field", sa.String(80), primary_key=True),
        sa.Column("subject_id", sa.String(16), sa.ForeignKey("subjects.id"), nullable=False),
        sa.Column("value", sa.String(400), nullable=False),
    )
    op.create_index("ix_personal_subject", "personal_data", ["subject_id"])
    op.create_index("ix_personal_field_value", "personal_data", ["field", "value"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_personal_field_value", "personal_data")
    op.drop_index("ix_personal_subject", "personal_data")
    op.drop_table("personal_data")
    op.drop_table("subjects")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("event_format")
