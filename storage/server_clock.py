"""The database server's own clock, against which a host's clock is checked.

PostgreSQL answers ``clock_timestamp()`` (the instant of the statement, not of the
transaction's start); SQLite runs inside the host, so its clock is the host's and there
is nothing to compare with.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from casework.storage.database import read_transaction
from casework.storage.timestamps import as_utc


def server_time(engine: Engine) -> datetime | None:
    """The database server's clock now, in UTC; ``None`` on SQLite (the host's own)."""
    if engine.dialect.name == "sqlite":
        return None
    with read_transaction(engine) as conn:
        value = conn.exec_driver_sql("SELECT clock_timestamp()").scalar()
    return as_utc(value, "the database server's clock") if isinstance(value, datetime) else None
