"""Every command that writes, against a database that refuses writes: one line, exit 1,
nothing changed; the auditor's commands there claim no write access."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from casework.workflow import Engine, FixedClock
from casework.workflow.cli import main
from casework.workflow.errors import ReadOnlyDatabase
from casework.workflow.outbox.mail import Outbox
from tests.support import PG_ADMIN, START, open_sample, rows_at

from casework.scheduler.mail.delivery import Deliverer  # isort: skip


def _read_only(url: str) -> str:
    """The URL of the same database, refusing writes: a read-only SQLite URI, or a
    PostgreSQL database whose sessions are read-only (as on a hot standby)."""
    if url.startswith("sqlite:///"):
        return f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    return url


def _prepared(db_url: str) -> tuple[str, str, int]:
    """A database with a breached case, a dead letter and a pending mail, made
    read-only: its URL, the case id and the dead letter's id."""
    clock = FixedClock(START)
    with Engine.open(db_url, clock=clock) as engine:
        case_id = open_sample(engine)
        clock.advance(timedelta(hours=30))
        engine.process_due()
        Deliverer(engine).deliver_due()
        [dead] = Outbox(engine.context).list(status="dead")
    return _read_only(db_url), case_id, dead.id


@pytest.fixture
def read_only_db(db_url: str) -> tuple[str, str, int]:
    """:func:`_prepared` on each database."""
    return _prepared(db_url)


WRITES = [
    ["open", "--customer", "C", "--channel", "phone", "--category", "other", "--summary", "s"],
    ["fire", "{case}", "apologise", "--actor", "li.na"],
    ["fire", "{case}", "assign", "--actor", "li.na", "--data", "to=wang.wei"],
    ["replan", "{case}", "--actor", "li.na"],
    ["tick"],
    ["deliver"],
    ["outbox", "retry", "{mail}"],
    ["outbox", "retry", "--all"],
]


@pytest.mark.parametrize("command", WRITES, ids=lambda c: " ".join(c[:3]))
def test_a_write_to_a_read_only_database_is_one_line_and_exit_1(
    read_only_db: tuple[str, str, int], command: list[str]
) -> None:
    url, case_id, mail_id = read_only_db
    before = rows_at(url)
    args = [a.format(case=case_id, mail=mail_id) for a in command]
    result = CliRunner().invoke(main, ["--db", url, *args])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("casework: error: the database is read-only")
    assert rows_at(url) == before


@pytest.mark.postgres
def test_auditing_a_read_only_database_claims_no_write_access(pg_url: str) -> None:
    """On a hot standby (or any read-only session) the role's privileges do not matter."""
    url, _, _ = _prepared(pg_url)
    result = CliRunner().invoke(main, ["--db", url, "verify"])
    assert result.exit_code == 0, result.output
    assert "may write" not in result.stderr


@pytest.mark.postgres
def test_a_read_only_engine_behind_a_transaction_pooling_bouncer_refuses_writes(
    pg_url: str, bouncer: Any
) -> None:
    """A bouncer ignores a session's startup options: read-only is set per transaction,
    and the refusal is the same one line."""
    pooled = bouncer.url(pg_url.rsplit("/", 1)[1])
    with Engine.open(pooled) as engine:
        case_id = engine.open_case(customer="C", summary="s", channel="phone",
                                   category="other").id  # fmt: skip
    with Engine.open(pooled, read_only=True) as reader:
        assert reader.get(case_id).state == "received"
        assert reader.verify().ok
        with pytest.raises(ReadOnlyDatabase):
            reader.fire(case_id, "apologise", actor="li.na")
