"""A host's engine made with ``isolation_level="AUTOCOMMIT"`` on PostgreSQL: casework's
writes still commit together or not at all, its audit reads run in one snapshot, and
the host's connections come back to its pool in autocommit, as they were lent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import create_engine

from casework.storage.database import libpq_url
from casework.storage.errors import WriteConflict
from casework.workflow import Engine, FixedClock, StorageFailure
from tests.support import open_sample

pytestmark = pytest.mark.postgres


@pytest.fixture
def host(pg_url: str) -> Iterator[SqlEngine]:
    made = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    yield made
    made.dispose()


def _refuse_outbox_rows_of(dsn: str, case_id: str) -> None:
    """A trigger that fails the outbox row of ``case_id``: the last write of a batch."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.case_id = '{case_id}' THEN RAISE EXCEPTION 'refused'; END IF; "
            "RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse()"
        )


def test_a_long_transaction_writes_all_or_nothing(host: SqlEngine, clock: FixedClock) -> None:
    """Without a BEGIN each pipeline sync would commit what came before it."""
    with Engine.open(host, clock=clock) as engine:
        case_id = open_sample(engine)
        store = engine.context.store
        pending = store.deadlines.pending_count()
        now = clock.now()
        rows = [(case_id, ("first_response", 1, level), now) for level in range(10, 260)]

        def with_a_ghost_last() -> None:
            with store.transaction() as tx:
                store.deadlines.plan_many(tx, rows)
                store.deadlines.plan_many(tx, [("ghost", ("first_response", 1, 0), now)])

        with pytest.raises(WriteConflict):
            with_a_ghost_last()
        assert store.deadlines.pending_count() == pending


def test_a_failed_batch_of_the_worker_leaves_nothing_and_verify_reads_it(
    host: SqlEngine, pg_url: str, clock: FixedClock
) -> None:
    """A statement that fails late in a batch of 120 breaches (a killed connection or a
    statement timeout does the same) leaves every deadline pending and every case as it
    was; ``verify`` on the same engine finds the history whole."""
    dsn = libpq_url(pg_url)
    with Engine.open(host, clock=clock) as engine:
        ids = sorted(open_sample(engine) for _ in range(120))
        _refuse_outbox_rows_of(dsn, ids[-1])
        with psycopg.connect(dsn) as conn:
            before = conn.execute("SELECT count(*) FROM events").fetchone()
        clock.advance(timedelta(days=3))
        with pytest.raises(StorageFailure, match="refused"):
            engine.process_due(batch=1000, max_batches=1)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone() == before
            fired = conn.execute("SELECT count(*) FROM deadlines WHERE status = 'fired'")
            assert fired.fetchone() == (0,)
        result = engine.verify()
        assert result.ok, result.problems[:3]
        assert engine.history(ids[0])


def test_the_hosts_connections_come_back_in_autocommit(host: SqlEngine, clock: FixedClock) -> None:
    with Engine.open(host, clock=clock) as engine:
        case_id = open_sample(engine)
        engine.fire(case_id, "contact", actor="li.na", data={"kind": "call"})
        assert engine.verify().ok
        engine.heartbeat("w1", clock.now())
    for _ in range(host.pool.size()):
        with host.connect() as conn:
            assert conn.connection.dbapi_connection.autocommit is True  # type: ignore[union-attr]


def test_an_engine_with_autocommit_as_an_execution_option_migrates_all_or_nothing(
    empty_pg: str,
) -> None:
    """SQLAlchemy's own idiom for an autocommit engine, ``engine.execution_options(
    isolation_level="AUTOCOMMIT")``, hands out raw connections that are not in autocommit,
    so casework does not notice it; its SQLAlchemy connections then run every statement
    in autocommit: a migration that fails part way leaves half a schema behind (and the
    advisory lock that keeps two processes from migrating at once is let go at once)."""
    dsn = libpq_url(empty_pg)
    with psycopg.connect(dsn, autocommit=True) as conn:  # a late migration's table fails
        conn.execute("CREATE TYPE personal_data AS (x int)")
    host = create_engine(empty_pg)
    try:
        with pytest.raises(StorageFailure, match="already exists"):
            Engine.open(host.execution_options(isolation_level="AUTOCOMMIT"))
    finally:
        host.dispose()
    with psycopg.connect(dsn) as conn:
        left = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert left.fetchone() == (0,), "tables of a failed migration left"
