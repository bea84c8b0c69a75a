"""An outbox row may speak of no case: the daily report of returns, exchanges and
complaints (``[reports.daily]``) is a mail about a branch's day, not about one case.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """``outbox.case_id`` nullable (SQLite copies the table in batch mode)."""
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("case_id", existing_type=sa.String(40), nullable=True)


def downgrade() -> None:
    """Rows without a case deleted, then the column required again."""
    op.execute("DELETE FROM outbox WHERE case_id IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("case_id", existing_type=sa.String(40), nullable=False)
