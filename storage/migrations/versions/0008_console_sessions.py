"""Sessions of the web console: a browser signed in with a token.

Only a hash of the session cookie is kept, with the token it speaks for, the CSRF
token of its forms and when it ends.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casework.storage.timestamps import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``console_sessions``."""
    op.create_table(
        "console_sessions",
        sa.Column("secret_hash", sa.String(64), primary_key=True),
        sa.Column("token_id", sa.String(16), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop ``console_sessions``."""
    op.drop_table("console_sessions")
