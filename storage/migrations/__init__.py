"""Alembic migrations of the casework schema."""
