"""Database faults: connections cut under a running worker, SQLite's lock under contention."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from casework.scheduler import Worker
from casework.workflow import Engine, FixedClock
from tests.support import PG_ADMIN, open_sample, wait_until
from tests.support import all_fired_once as _all_fired_once


class _Log:
    """Keeps what the worker logs."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def info(self, event: str, **_: Any) -> None:
        self.events.append(event)

    warning = info
    exception = info


def _cut(database: str) -> int:
    """Terminate every session of ``database`` but this one; how many were cut."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def _next_due(engine: Engine) -> datetime | None:
    """The earliest pending deadline, asking again if our own session was just cut."""
    for _ in range(3):
        try:
            return engine.next_due()
        except Exception:  # noqa: S112 - the cut may hit this reader too
            continue
    return engine.next_due()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_survives_its_connections_being_cut(pg_url: str) -> None:
    """Sessions terminated again and again mid-batch: the worker logs it, reconnects and
    fires every deadline exactly once."""
    past = FixedClock(datetime.now(UTC) - timedelta(days=5))
    with Engine.open(pg_url, clock=past) as engine:
        for _ in range(60):
            open_sample(engine)
    database = pg_url.rsplit("/", 1)[1]
    log = _Log()
    with Engine.open(pg_url) as engine:
        worker = Worker(engine, poll_s=0.2, batch=4, logger=log)
        worker.start()
        try:
            cuts = 0

            def caught_up() -> bool:
                """Nothing due any more; until then, cut the worker's sessions again."""
                nonlocal cuts
                due = _next_due(engine)
                if due is None or due > datetime.now(UTC):
                    return True
                if cuts < 15:
                    cuts += _cut(database) > 0
                return False

            wait_until(caught_up, timeout=120, interval=0.05, what="the worker to catch up")
        finally:
            worker.stop()
        assert cuts >= 5
        assert "wake_failed" in log.events
        _all_fired_once(engine)
        assert engine.verify().ok


@pytest.mark.slow
def test_sqlite_waits_for_its_lock_instead_of_failing(tmp_path: Any) -> None:
    """Another connection holds the write lock for half a second: the write waits and
    succeeds within the busy timeout."""
    url = f"sqlite:///{tmp_path}/locked.db"
    with Engine.open(url) as engine:
        case_id = open_sample(engine)
        holder = sqlite3.connect(
            f"{tmp_path}/locked.db", isolation_level=None, check_same_thread=False
        )
        holder.execute("BEGIN IMMEDIATE")
        order: list[str] = []

        def commit() -> None:
            order.append("releasing the lock")  # before: the write cannot come between
            holder.execute("COMMIT")

        release = threading.Timer(0.5, commit)
        release.start()
        engine.fire(case_id, "apologise", actor="li.na")
        order.append("write done")
        release.join()
        holder.close()
        assert order == ["releasing the lock", "write done"]  # it waited rather than failing
        assert engine.get(case_id).state == "apologised"
