"""Cases and their append-only event log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from casework.storage.timestamps import UTCDateTime

# Case ids sort byte-wise on PostgreSQL whatever the database's locale, as on SQLite, so
# that streams ordered by id merge in the same order everywhere.
CASE_ID = sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``cases`` and ``events``."""
    op.create_table(
        "cases",
        sa.Column("id", CASE_ID, primary_key=True),
        sa.Column("machine", sa.String(64), nullable=False),
        sa.Column("machine_version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("branch", sa.String(200), nullable=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("priority", sa.String(32), nullable=False),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("contact", sa.String(400), nullable=True),
        sa.Column("summary", sa.String(4000), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("last_event_at", UTCDateTime(), nullable=False),
        sa.Column("escalation_level", sa.Integer, nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_cases_state", "cases", ["state"])
    op.create_index("ix_cases_owner", "cases", ["owner"])
    op.create_index("ix_cases_received_at", "cases", ["received_at"])
    op.create_table(
        "events",
        sa.Column("case_id", CASE_ID, sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(64), nullable=True),
        sa.Column("to_state", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    _forbid_event_changes()


def _forbid_event_changes() -> None:
    """Make the database itself refuse UPDATE and DELETE on events."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION casework_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'events are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
            "FOR EACH ROW EXECUTE FUNCTION casework_events_append_only()"
        )
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER events_no_{action.lower()} BEFORE {action} ON events "
            "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
        )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION casework_events_append_only()")
    op.drop_index("ix_cases_received_at", "cases")
    op.drop_index("ix_cases_owner", "cases")
    op.drop_index("ix_cases_state", "cases")
    op.drop_table("cases")
