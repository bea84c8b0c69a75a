"""The events stream on PostgreSQL, fetched ahead by a thread: every row in order, the
thread stopped when the reader stops, a cut connection's error raised to the reader; a
whole history's events read so on a second connection sharing the snapshot, a host's
engine lending one connection only."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine

from casework.storage.database import libpq_url
from casework.storage.dialect import BATCH_ROWS
from casework.storage.read_ahead import AHEAD, ReadAhead
from casework.storage.snapshot import give_back
from casework.workflow import Engine
from tests.support import PG_ADMIN

pytestmark = pytest.mark.postgres

ROWS = BATCH_ROWS * (AHEAD + 3) + 17
SERIES = "SELECT g, 'row ' || g FROM generate_series(1, %s) g ORDER BY g"


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq_url(pg_url)) as conn:
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


def _history(streams: Any) -> tuple[list[str], list[tuple[str, int]]]:
    cases = [row[0] for row in streams.cases]
    events = [(row[0], row[1]) for row in streams.events]
    list(streams.deadlines)
    return cases, events


def test_a_whole_history_reads_its_events_beside_on_the_same_snapshot(pg_url: str) -> None:
    """casework's own engine reads the events of a whole history on a second connection
    that imported the first one's snapshot: what commits meanwhile is in neither."""
    with Engine.open(pg_url) as engine, Engine.open(pg_url) as other:
        first = engine.open_case(
            customer="张伟", summary="屏幕坏了", channel="phone", category="other"
        ).id
        with engine.context.store.audit.snapshot() as streams:
            assert engine.db.pool.checkedout() == 2  # type: ignore[attr-defined]
            later = other.open_case(
                customer="李娜", summary="没人来", channel="phone", category="other"
            ).id
            other.fire(first, "note", actor="li.na", note="回电")
            cases, events = _history(streams)
        assert cases == [first]
        assert events == [(first, 1)]
        assert engine.verify().ok
        assert engine.get(later).version == 1


def test_a_hosts_engine_lends_one_connection_for_a_history(pg_url: str) -> None:
    """A host's pool may have no second connection to give: its engine reads every
    stream on the one connection, without waiting for another."""
    host = create_engine(pg_url, pool_size=1, max_overflow=0, pool_timeout=1)
    try:
        with Engine.open(host) as engine:
            case = engine.open_case(
                customer="张伟", summary="屏幕坏了", channel="phone", category="other"
            ).id
            with engine.context.store.audit.snapshot() as streams:
                assert host.pool.checkedout() == 1  # type: ignore[attr-defined]
                assert _history(streams) == ([case], [(case, 1)])
            assert engine.verify().ok
    finally:
        host.dispose()


def test_a_server_that_refuses_to_export_the_snapshot_is_read_on_one_connection(
    pg_url: str,
) -> None:
    """Where ``pg_export_snapshot()`` is refused, the snapshot is taken again on the one
    connection and every stream read there."""
    role = f"cw_reader_{uuid.uuid4().hex[:8]}"
    with Engine.open(pg_url) as engine:
        case = engine.open_case(customer="张伟", summary="屏幕坏了", channel="phone",
                                category="other").id  # fmt: skip
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{database}", autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        try:
            admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
            admin.execute("REVOKE EXECUTE ON FUNCTION pg_export_snapshot() FROM PUBLIC")
            reader_url = pg_url.replace("postgres@", f"{role}@", 1)
            with Engine.open(reader_url, read_only=True) as engine:
                with engine.context.store.audit.snapshot() as streams:
                    assert engine.db.pool.checkedout() == 1  # type: ignore[attr-defined]
                    assert _history(streams) == ([case], [(case, 1)])
                assert engine.verify().ok
        finally:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


def test_a_connection_cut_under_a_history_is_dropped_quietly(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server cut the snapshot's connection: giving it back neither raises nor logs
    the pool's failed reset, the pool does not keep it, and the next read works."""
    with Engine.open(pg_url) as engine:
        raw = engine.db.raw_connection()
        raw.cursor().execute("SELECT 1")
        pid = raw.driver_connection.info.backend_pid  # type: ignore[union-attr]
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with caplog.at_level(logging.DEBUG):
            give_back(raw)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert engine.db.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert engine.verify().ok
