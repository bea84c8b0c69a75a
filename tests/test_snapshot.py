"""The snapshot that tests use to prove "nothing was written" reads every table."""

from __future__ import annotations

from sqlalchemy import text

from casework.storage.tables import metadata
from casework.workflow import Engine
from tests.support import START, snapshot


def test_a_snapshot_sees_a_row_in_any_table_even_one_added_later(engine: Engine) -> None:
    """Every table the database lists is read (a heartbeat is in none of the case
    tables), a table made after the helper was written too, rows in a stable order."""
    before = snapshot(engine)
    assert set(metadata.tables) <= set(before)  # every table of the schema
    engine.heartbeat("worker-1", START)
    after = snapshot(engine)
    assert after["worker_heartbeats"] != before["worker_heartbeats"]
    with engine.db.begin() as conn:
        conn.execute(text("CREATE TABLE added_later (n INTEGER, word VARCHAR(10))"))
        conn.execute(text("INSERT INTO added_later VALUES (2, 'b'), (1, 'a'), (3, NULL)"))
    again = snapshot(engine)
    assert again["added_later"] == [(1, "a"), (2, "b"), (3, None)]
    assert snapshot(engine) == again
