"""The events stream on PostgreSQL, fetched ahead by a thread: every row in order, the
thread stopped when the reader stops, a cut connection's error raised to the reader."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import pytest

from casework.storage.dialect import BATCH_ROWS
from casework.storage.read_ahead import AHEAD, ReadAhead
from tests.support import PG_ADMIN

pytestmark = pytest.mark.postgres

ROWS = BATCH_ROWS * (AHEAD + 3) + 17
SERIES = "SELECT g, 'row ' || g FROM generate_series(1, %s) g ORDER BY g"


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        yield conn


@pytest.fixture
def cursor(conn: psycopg.Connection) -> Iterator[psycopg.ServerCursor]:
    cursor = conn.cursor(name="ahead")
    yield cursor
    with contextlib.suppress(psycopg.Error):  # a cut connection cannot close it
        cursor.close()


def test_every_row_comes_in_order_as_a_plain_cursor_gives_them(
    conn: psycopg.Connection, cursor: psycopg.ServerCursor
) -> None:
    ahead = ReadAhead(cursor, SERIES, (ROWS,))
    try:
        rows = list(ahead)
    finally:
        ahead.close()
    assert rows == conn.execute(SERIES, (ROWS,)).fetchall()


def test_a_reader_that_stops_early_stops_the_thread(
    conn: psycopg.Connection, cursor: psycopg.ServerCursor
) -> None:
    ahead = ReadAhead(cursor, SERIES, (ROWS,))
    rows = iter(ahead)
    assert next(rows) == (1, "row 1")
    assert ahead.fetching
    ahead.close()  # the thread waits with a full queue: it must not wait for ever
    assert not ahead.fetching
    assert conn.execute("SELECT 1").fetchone() == (1,)  # the connection is usable


def test_a_cut_connection_is_raised_to_the_reader(
    conn: psycopg.Connection, cursor: psycopg.ServerCursor
) -> None:
    ahead = ReadAhead(cursor, SERIES, (ROWS,))
    rows = iter(ahead)
    next(rows)
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        for _ in rows:
            pass
    ahead.close()
    assert not ahead.fetching


def test_closing_before_reading_starts_no_thread(
    conn: psycopg.Connection, cursor: psycopg.ServerCursor
) -> None:
    ahead = ReadAhead(cursor, SERIES, (ROWS,))
    ahead.close()
    assert not ahead.fetching
