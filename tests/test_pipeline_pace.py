"""A pipelined transaction on PostgreSQL reads its results back every
:data:`PIPELINE_DEPTH` statements, within the transaction, and commits all of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from casework.storage.database import libpq_url
from casework.storage.pipeline_pace import PIPELINE_DEPTH, PacedCursor

pytestmark = pytest.mark.postgres


class Syncs:
    """The real pipeline, its syncs counted."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.count = 0

    def sync(self) -> None:
        self.count += 1
        self.pipeline.sync()


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq_url(pg_url)) as conn:
        conn.execute("CREATE TABLE paced (n integer PRIMARY KEY)")
        conn.commit()
        yield conn


def test_no_more_than_the_depth_goes_unread_and_all_is_committed(
    conn: psycopg.Connection,
) -> None:
    rows = [(n,) for n in range(PIPELINE_DEPTH * 2 + 50)]
    with conn.pipeline() as pipeline:
        syncs = Syncs(pipeline)
        paced = PacedCursor(conn.cursor(), syncs)
        paced.executemany("INSERT INTO paced VALUES (%s)", rows)
        assert syncs.count == 2  # before the second hundred and the third
        paced.execute("SELECT count(*) FROM paced")
        assert paced.fetchone() == (len(rows),)  # read back: nothing left unread
        for n in range(PIPELINE_DEPTH):
            paced.execute("UPDATE paced SET n = n WHERE n = %s", (n,))
        assert syncs.count == 2
        paced.execute("UPDATE paced SET n = n WHERE n = 0")
        assert syncs.count == 3
    conn.commit()
    assert conn.execute("SELECT count(*) FROM paced").fetchone() == (len(rows),)


def test_a_bad_row_fails_the_transaction_and_nothing_is_written(
    conn: psycopg.Connection,
) -> None:
    rows = [(n,) for n in range(PIPELINE_DEPTH * 3)]

    def with_a_taken_key() -> None:
        with conn.pipeline() as pipeline:
            paced = PacedCursor(conn.cursor(), pipeline)
            paced.executemany("INSERT INTO paced VALUES (%s)", [*rows[:5], (0,), *rows[5:]])
            paced.execute("SELECT count(*) FROM paced")
            paced.fetchall()

    with pytest.raises(psycopg.errors.UniqueViolation):
        with_a_taken_key()
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM paced").fetchone() == (0,)
