"""Storage: database settings, timestamps, migrations."""

from __future__ import annotations

import doctest
import multiprocessing
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine as SAEngine
from sqlalchemy import insert, text
from sqlalchemy.exc import StatementError

import casework.workflow as workflow
from casework.storage import make_engine, upgrade
from casework.storage.migrate import HEAD, current_revision, head_revision
from casework.storage.tables import cases_table


def test_sqlite_runs_with_wal_full_sync_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    """The embedded default is durable and waits for locks instead of failing."""
    db = make_engine(f"sqlite:///{tmp_path}/x.db")
    with db.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
    db.dispose()


def test_a_naive_datetime_never_reaches_the_database(tmp_path: Path) -> None:
    """The timestamp column type refuses naive datetimes."""
    db = make_engine(f"sqlite:///{tmp_path}/x.db")
    upgrade(db)
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(StatementError, match="timezone-aware"), db.begin() as conn:
        conn.execute(insert(cases_table).values(id="x", received_at=naive))
    db.dispose()


def test_migration_is_idempotent(db_url: str) -> None:
    """Upgrading a current database does nothing; the revision is the head."""
    db = make_engine(db_url)
    upgrade(db)
    upgrade(db)
    assert current_revision(db) == head_revision() == HEAD == "0014"
    db.dispose()


def _open_fresh(url: str) -> None:
    workflow.Engine.open(url).close()


@pytest.mark.slow
def test_two_processes_migrating_one_fresh_database(tmp_path: Path) -> None:
    """Two engines opening a new database at once do not trip over each other."""
    url = f"sqlite:///{tmp_path}/race.db"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open_fresh, args=(url,)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    db: SAEngine = make_engine(url)
    assert current_revision(db) == head_revision()
    db.dispose()


def test_the_api_example_runs() -> None:
    """The example in the workflow package's docstring works as written."""
    result = doctest.testmod(workflow, raise_on_error=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_public_names_are_exported() -> None:
    """``__all__`` lists exactly the public names, each of which exists."""
    for module in (workflow, __import__("machines"), __import__("storage")):
        assert len(set(module.__all__)) == len(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), name
