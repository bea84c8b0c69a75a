"""casework embedded in a host application: inside the host's transaction, on the
host's own SQLAlchemy engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, select
from sqlalchemy import Engine as SAEngine

from casework.machines.definition import MANUAL_ESCALATION
from casework.storage.tables import cases_table, deadlines_table, events_table, outbox_table
from casework.workflow import Engine
from casework.workflow.clock import FixedClock
from casework.workflow.config import settings_from_mapping
from casework.workflow.errors import InvalidInput
from casework.workflow.results import Case
from casework.workflow.webhooks.subscriptions import add
from tests.support import open_sample, wait_until

HOST = MetaData()
orders = Table(
    "host_orders",
    HOST,
    Column("id", Integer, primary_key=True),
    Column("note", String(100), nullable=False),
)
"""The host's own table, in the same database."""

LOOPBACK = settings_from_mapping({"webhooks": {"allowed_hosts": ["127.0.0.1"]}}, "t")


class HandlerFailed(Exception):
    """What the host's handler raises after casework has written."""


@pytest.fixture
def host(db_url: str) -> Iterator[SAEngine]:
    """The host's own SQLAlchemy engine on the test database, with its own table."""
    made = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    HOST.create_all(made)
    yield made
    made.dispose()


@pytest.fixture
def embedded(host: SAEngine, clock: FixedClock) -> Iterator[Engine]:
    """casework opened on the host's engine, every event subscribed by a webhook."""
    with Engine.open(host, clock=clock, config=LOOPBACK) as engine:
        add(engine.store, "http://127.0.0.1:9/hook", "*", engine.settings.webhooks, clock.now())
        yield engine


def _counts(host: SAEngine) -> dict[str, int]:
    with host.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (orders, cases_table, events_table, deadlines_table, outbox_table)
        }


def test_a_case_opened_in_a_failing_handler_leaves_nothing(
    host: SAEngine, embedded: Engine
) -> None:
    before, opened = _counts(host), []

    def handler() -> None:
        with host.begin() as conn:
            conn.execute(orders.insert().values(id=1, note="refund"))
            opened.append(open_sample(embedded, connection=conn))
            raise HandlerFailed

    with pytest.raises(HandlerFailed):
        handler()
    assert _counts(host) == before
    assert embedded.store.case(opened[0]) is None


def test_an_event_fired_in_a_failing_handler_leaves_nothing(
    host: SAEngine, embedded: Engine
) -> None:
    case_id = open_sample(embedded)
    before, version = _counts(host), embedded.get(case_id).version

    def handler() -> None:
        with host.begin() as conn:
            conn.execute(orders.insert().values(id=1, note="escalated"))
            reason = {"reason": "the customer called twice"}
            fired = embedded.fire(
                case_id, MANUAL_ESCALATION, actor="li.na", data=reason, connection=conn
            )
            assert fired.version == version + 1  # seen inside the transaction
            raise HandlerFailed

    with pytest.raises(HandlerFailed):
        handler()
    assert _counts(host) == before
    assert embedded.get(case_id).version == version


def test_a_handler_that_commits_keeps_its_row_and_the_case(
    host: SAEngine, embedded: Engine
) -> None:
    before = _counts(host)
    with host.begin() as conn:
        conn.execute(orders.insert().values(id=1, note="refund"))
        case_id = open_sample(embedded, connection=conn)
        embedded.fire(case_id, "apologise", actor="li.na", connection=conn)
        assert conn.in_transaction()  # neither committed nor closed by casework
    after = _counts(host)
    assert after["host_orders"] == before["host_orders"] + 1
    assert after["cases"] == before["cases"] + 1
    assert after["events"] == before["events"] + 2
    assert after["deadlines"] > before["deadlines"]
    assert after["outbox"] == before["outbox"] + 2  # a webhook delivery per event
    assert [e.event for e in embedded.history(case_id)] == ["open", "apologise"]
    assert embedded.verify().ok


def test_a_refusal_of_casework_leaves_the_hosts_transaction_usable(
    host: SAEngine, embedded: Engine
) -> None:
    """casework works in a savepoint: a case id that is taken takes back what the call
    wrote, and the host can go on and commit its own row."""
    taken = open_sample(embedded)
    with host.begin() as conn:
        conn.execute(orders.insert().values(id=1, note="first"))
        with pytest.raises(InvalidInput, match="is taken"):
            open_sample(embedded, case_id=taken, connection=conn)
        conn.execute(orders.insert().values(id=2, note="second"))
    assert _counts(host)["host_orders"] == 2
    assert len(embedded.history(taken)) == 1
    assert embedded.verify().ok


def test_a_connection_casework_cannot_join_is_refused(
    host: SAEngine, embedded: Engine, tmp_path: Path
) -> None:
    with host.connect() as conn:
        with pytest.raises(InvalidInput, match="begin the transaction") as refused:
            open_sample(embedded, connection=conn)
        assert refused.value.field == "connection"
    if embedded.db.dialect.name == "sqlite":
        return
    other = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with other.begin() as conn, pytest.raises(InvalidInput, match="the connection is to sqlite"):
        open_sample(embedded, connection=conn)
    other.dispose()


def test_this_process_hears_a_planned_deadline_at_the_hosts_commit_only(
    host: SAEngine, embedded: Engine
) -> None:
    heard: list[datetime] = []
    embedded.on_deadline_planned(heard.append)

    def handler() -> None:
        with host.begin() as conn:
            open_sample(embedded, connection=conn)
            raise HandlerFailed

    with pytest.raises(HandlerFailed):
        handler()
    with host.begin() as conn:
        open_sample(embedded, connection=conn)
        assert heard == []
    assert len(heard) == 1


def _first_due(case: Case) -> datetime:
    return min(datetime.fromisoformat(d["due_at"]) for d in case.deadlines)


@pytest.mark.postgres
def test_a_worker_hears_a_deadline_planned_in_a_host_transaction_once_committed(
    pg_url: str, clock: FixedClock
) -> None:
    """The worker's listener hears ``NOTIFY`` at the host's commit. Before it, a deadline
    planned and committed by another engine is heard, and the host's is not: the
    server delivers notifications in commit order."""
    host = create_engine(pg_url)
    heard: list[datetime] = []
    lock = threading.Lock()

    def hear(due: datetime) -> None:
        with lock:
            heard.append(due)

    with Engine.open(host, clock=clock) as engine, Engine.open(pg_url, clock=clock) as other:
        listener = engine.store.listen(hear, lambda err: None)
        assert listener is not None
        try:
            assert listener.listening.wait(60), "the listener listens"
            open_sample(other)  # the policy stored: nothing for the two to wait on each other for
            clock.advance(timedelta(minutes=1))  # each case's deadlines its own instants
            with host.begin() as conn:
                mine = engine.open_case(customer="C-1", channel="phone", category="other",
                                        summary="in the host's transaction",
                                        received_at=clock.now(), connection=conn)  # fmt: skip
                clock.advance(timedelta(minutes=1))  # the marker's deadlines are later
                marker = other.open_case(customer="C-2", channel="phone", category="other",
                                         summary="committed", received_at=clock.now())  # fmt: skip
                marked = _first_due(marker)
                wait_until(lambda: marked in heard, what="the committed deadline to be heard")
                assert _first_due(mine) not in heard
            wait_until(lambda: _first_due(mine) in heard, what="the host's deadline")
        finally:
            listener.stop()
    host.dispose()
