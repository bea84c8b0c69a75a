"""Erasure reaches every copy by its exact value and harms no other customer; when a
reader holds the database files their compaction is left pending, said, and completed
later by ``casework erase --finish`` or the worker's daily pass; PostgreSQL's planner
statistics keep no personal value."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from casework.scheduler.worker import Worker
from casework.storage.records import WEBHOOK_KIND, Remembered
from casework.workflow import Engine, FixedClock, InvalidInput
from casework.workflow.cli import main
from casework.workflow.config import WebhookSettings
from casework.workflow.outbox.mail import Outbox
from casework.workflow.privacy.erasure import erase
from casework.workflow.webhooks.subscriptions import add
from tests.support import open_sample
from tests.test_privacy import NAME, PHONE, SECRETS, _found, _zhang

HOOK = "https://hooks.invalid/casework"
"""A subscription's receiver (never reached: its answers are written as it would)."""


def _keep_answer(engine: Engine, key: str, case_id: str) -> None:
    """What the API keeps for an ``Idempotency-Key``: the case as it answered."""
    answer = Remembered("h", 201, engine.get(case_id).to_json(), None, engine.clock.now())
    assert engine.context.store.access.remember("tok1", key, answer)


def _kept(engine: Engine, key: str) -> Any:
    kept = engine.context.store.access.recall("tok1", key)
    assert kept is not None
    return kept.body


def _finished(engine: Engine, step: Callable[[], object] | None = None) -> bool:
    """Whether the pending compaction completes, ``step`` (``erase --finish``) run again
    while a transaction older than the erasure is open (on the shared test server,
    another test's ``CREATE DATABASE`` holds back every database's horizon)."""
    deadline = time.monotonic() + 120
    while True:
        (step or engine.finish_erasure)()
        if engine.context.store.personal.compaction_pending() is None:
            return True
        if time.monotonic() > deadline:
            return False


def _echoed_failures(engine: Engine) -> None:
    """Each webhook delivery refused by a receiver that echoes the payload it got."""
    outbox = Outbox(engine.context, kind=WEBHOOK_KIND)
    claim = outbox.claim("t", limit=100)
    for row in claim.mails:
        case = row.body["payload"]["case"]
        echo = {k: case[k] for k in ("id", "customer", "contact", "received_at", "summary")}
        answer = f"HTTP 422: rejected {json.dumps(echo, ensure_ascii=False)}"
        outbox.failed([row], "t", answer, permanent=True)


def test_erasure_replaces_exact_values_only_and_reaches_the_last_error(
    engine: Engine, clock: FixedClock
) -> None:
    add(engine.context.store, HOOK, "*", WebhookSettings(), clock.now())
    clock.advance(timedelta(days=10))  # received in month 12: "12" inside their times
    erased = open_sample(engine, customer="CUST-1", contact="12")
    twelve = open_sample(engine, customer="CUST-12", contact="+86 139 0000 0012")
    ninety_nine = open_sample(engine, customer="CUST-99", summary="12")
    for key, case_id in (("a", erased), ("b", twelve), ("c", ninety_nine)):
        _keep_answer(engine, key, case_id)
    _echoed_failures(engine)
    before = {key: _kept(engine, key) for key in ("b", "c")}
    assert "12" in before["c"]["received_at"]

    engine.erase("CUST-1", actor="dpo", reason="request #7")

    assert {key: _kept(engine, key) for key in ("b", "c")} == before  # others untouched
    assert (_kept(engine, "a")["customer"], _kept(engine, "a")["contact"]) == (
        "[erased]",
        "[erased]",
    )
    assert engine.get(twelve).customer == "CUST-12"
    assert engine.get(ninety_nine).summary == "12"
    rows = {
        m.case_id: m for m in engine.context.store.outbox.rows(kind=WEBHOOK_KIND) if m.last_error
    }
    for case_id in (twelve, ninety_nine):
        assert rows[case_id].last_error is not None
        assert engine.get(case_id).customer in rows[case_id].last_error
    gone = rows[erased]
    assert gone.last_error is not None
    assert '"customer": "[erased]"' in gone.last_error
    assert '"contact": "[erased]"' in gone.last_error
    assert "CUST-1" not in gone.last_error
    assert gone.last_error.count("[erased]") == 2  # no "12" picked out of a time
    assert '"received_at": "2026-12-' in gone.last_error
    assert gone.body["payload"]["case"]["customer"] == "[erased]"


def test_the_last_error_echoing_a_customer_leaves_no_trace_in_the_files(
    engine: Engine, clock: FixedClock
) -> None:
    add(engine.context.store, HOOK, "*", WebhookSettings(), clock.now())
    _zhang(engine)
    _echoed_failures(engine)
    assert _found(engine, SECRETS) == set(SECRETS)
    summary = engine.erase(NAME, actor="dpo", reason="本人申请")
    assert summary["compaction_pending"] is None or _finished(engine), summary["expunged"]
    assert _found(engine, SECRETS) == set()


@contextmanager
def _reader(engine: Engine) -> Iterator[None]:
    """Another process's open read transaction: on SQLite it holds the write-ahead log
    (a snapshot from before the erasure), on PostgreSQL a lock on the cases table."""
    url = engine.db.url
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM cases").fetchone()
        try:
            yield
        finally:
            conn.execute("COMMIT")
            conn.close()
        return
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as pg:
        pg.execute("SELECT count(*) FROM cases").fetchone()  # its lock held until the end
        yield
        pg.rollback()


def _queued_behind_a_lock(engine: Engine) -> int:
    """How many ``VACUUM``s wait for a lock (PostgreSQL; none on SQLite)."""
    if engine.db.url.get_backend_name() == "sqlite":
        return 0
    with engine.db.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE query ILIKE 'VACUUM%' AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def test_a_reader_holding_the_files_leaves_compaction_pending_until_finish(
    engine: Engine, clock: FixedClock, db_url: str
) -> None:
    zhang = _zhang(engine)
    other = open_sample(engine, customer="李雷")
    runner = CliRunner()
    with _reader(engine):
        summary = engine.erase(NAME, actor="dpo", reason="本人申请")
        assert summary["compaction_pending"] is not None
        assert "compaction pending: a " in summary["expunged"]
        assert _queued_behind_a_lock(engine) == 0  # nothing left waiting before the API
        assert engine.get(zhang).customer == "[erased]"  # gone from the live rows at once
        assert engine.get(other).customer == "李雷"
        assert _found(engine, SECRETS)  # the files hold them still: hence pending
        with pytest.raises(InvalidInput, match="finishing the erasure completes it"):
            engine.erase(NAME, actor="dpo", reason="again")
        still = runner.invoke(main, ["--db", db_url, "erase", "--finish"])
        assert still.exit_code == 1, still.output
        assert "still pending since" in still.output
    clock.advance(timedelta(hours=1))
    done = runner.invoke(main, ["--db", db_url, "erase", "--finish", "--json"])
    finished = json.loads(done.stdout)
    assert finished["pending_since"] == summary["compaction_pending"]
    assert (done.exit_code, finished["compaction_pending"]) == (0, None) or _finished(engine)
    assert _found(engine, SECRETS) == set()
    again = runner.invoke(main, ["--db", db_url, "erase", "--finish"])
    assert again.exit_code == 0
    assert "no compaction is pending" in again.output
    with pytest.raises(InvalidInput, match=r"this customer \(or they were erased\)$"):
        engine.erase(NAME, actor="dpo", reason="again")
    assert engine.verify().ok


def test_a_second_erase_on_the_command_line_names_erase_finish(engine: Engine, db_url: str) -> None:
    """The library says a pending compaction is completed by finishing the erasure; the
    command line names the command that does."""
    _zhang(engine)
    with _reader(engine):
        assert engine.erase(NAME, actor="dpo", reason="本人申请")["compaction_pending"]
        again = CliRunner().invoke(
            main, ["--db", db_url, "erase", "--customer", NAME, "--actor", "dpo", "--reason", "r"]
        )
    assert again.exit_code == 2, again.output
    assert "no case names this customer" in again.stderr
    assert "`casework erase --finish` completes it" in again.stderr


def test_an_erasure_killed_before_its_compaction_is_completed_by_the_worker(
    engine: Engine, clock: FixedClock
) -> None:
    _zhang(engine)
    # the process dies once the erasure committed, before the files were compacted
    erase(engine.context, NAME, actor="dpo", reason="本人申请", expunge=False)
    since = engine.context.store.personal.compaction_pending()
    assert since == clock.now()
    worker = Worker(engine, listen=False)
    assert _finished(engine, worker.retain)  # the daily pass, with no retention configured
    assert _found(engine, SECRETS) == set()


def test_the_finish_option_goes_alone(db_url: str) -> None:
    refused = CliRunner().invoke(main, ["--db", db_url, "erase", "--finish", "--due"])
    assert refused.exit_code == 2
    assert "--finish goes alone" in refused.output


@pytest.mark.postgres
def test_postgres_keeps_no_statistics_of_personal_columns(pg_url: str, clock: FixedClock) -> None:
    from alembic import command

    from casework.storage.migrate import alembic_config

    with Engine.open(pg_url, clock=clock) as engine:
        for _ in range(30):
            _zhang(engine)
        config = alembic_config()
        with engine.db.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0012")  # as a database was before
        assert NAME in _statistics(engine)  # the test sees what ANALYZE keeps
        with engine.db.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        assert NAME not in _statistics(engine)  # those gathered before dropped
        for _ in range(10):
            open_sample(engine, customer=NAME, contact=PHONE)
        kept = _statistics(engine)
        assert NAME not in kept
        assert PHONE not in kept


def _statistics(engine: Engine) -> str:
    """``pg_stats`` of the tables, as text, after an ``ANALYZE``."""
    with engine.db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
        rows = conn.execute(
            text(
                "SELECT tablename, attname, most_common_vals::text, histogram_bounds::text "
                "FROM pg_stats WHERE schemaname = 'public'"
            )
        ).all()
    return json.dumps([list(r) for r in rows], ensure_ascii=False)
