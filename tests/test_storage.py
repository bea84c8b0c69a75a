"""Storage: database settings, timestamps, migrations."""

from __future__ import annotations

import doctest
import multiprocessing
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine as SAEngine
from sqlalchemy import insert, text
from sqlalchemy.exc import StatementError

import casework.workflow as workflow
from casework.storage import make_engine, upgrade
from casework.storage.errors import StorageError, WriteConflict
from casework.storage.migrate import HEAD, current_revision, head_revision
from casework.storage.records import CaseQuery, TokenRecord
from casework.storage.sql_store import SqlStore
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


def _reads(store: SqlStore) -> dict[str, Callable[[], object]]:
    """One read of every role, and of the store itself."""
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return {
        "cases.get": lambda: store.cases.get("c1"),
        "cases.with_events": lambda: store.cases.with_events("c1"),
        "cases.matching": lambda: store.cases.matching(CaseQuery()),
        "cases.find": lambda: store.cases.find("C-1", 5),
        "deadlines.policies": store.deadlines.policies,
        "deadlines.next_due": store.deadlines.next_due,
        "outbox.rows": lambda: store.outbox.rows(),
        "personal.rows": lambda: store.personal.rows(None),
        "personal.compaction_pending": store.personal.compaction_pending,
        "access.tokens": store.access.tokens,
        "webhooks.subscriptions": lambda: store.webhooks.subscriptions(),
        "service.latest_beat": store.service.latest_beat,
        "partners.registered": store.partners.registered,
        "attachments.get": lambda: store.attachments.get("0" * 64),
        "audit.middle_case_id": store.audit.middle_case_id,
        "audit.case_heads": lambda: _heads(store, at),
        "database_id": store.database_id,
    }


def _heads(store: SqlStore, at: datetime) -> list[tuple[str, int, str]]:
    with store.audit.case_heads(at) as heads:
        return list(heads)


def test_every_role_raises_storage_errors_never_a_drivers(tmp_path: Path) -> None:
    """On a database without casework's tables, every read of every role fails with
    storage's own error (not the driver's or SQLAlchemy's), and so does a write inside a
    transaction; a key taken twice is a WriteConflict."""
    db = make_engine(f"sqlite:///{tmp_path}/empty.db")
    store = SqlStore(db)
    for name, read in _reads(store).items():
        with pytest.raises(StorageError) as raised:
            read()
        assert type(raised.value) is StorageError, name
        assert "no such table" in str(raised.value), name
    with pytest.raises(StorageError, match="no such table"), store.transaction() as tx:
        store.outbox.queue(tx, [{"dedupe_key": "k", "case_id": "c1", "kind": "mail",
                                 "level": 0, "recipients": [], "body": {},
                                 "next_attempt_at": datetime.now(UTC),
                                 "created_at": datetime.now(UTC)}])  # fmt: skip
    upgrade(db)
    token = TokenRecord("t1", "li.na", "admin", None, datetime.now(UTC))
    store.access.add_token(token, "hash-1")
    with pytest.raises(WriteConflict):
        store.access.add_token(token, "hash-2")
    db.dispose()
