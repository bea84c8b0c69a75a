"""casework embedded in a host application: inside the host's transaction, on the
host's own SQLAlchemy engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy import Engine as SAEngine

from casework.machines.definition import MANUAL_ESCALATION
from casework.storage.migrate import HEAD, current_revision
from casework.storage.tables import cases_table, deadlines_table, events_table, outbox_table
from casework.workflow import Engine
from casework.workflow.clock import FixedClock
from casework.workflow.config import settings_from_mapping
from casework.workflow.errors import InvalidInput
from casework.workflow.results import Case
from casework.workflow.webhooks.subscriptions import add
from tests.support import open_sample, wait_until
from tests.support.host_alembic import host_migrates

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
        add(
            engine.context.store,
            "http://127.0.0.1:9/hook",
            "*",
            engine.settings.webhooks,
            clock.now(),
        )
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
    assert embedded.context.store.cases.get(opened[0]) is None


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
        listener = engine.context.store.deadlines.listen(hear, lambda err: None)
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


# -- living in the host's database -------------------------------------------------

HOST_MIGRATION = '''"""The host's first migration: a table called events, as casework has."""
import sqlalchemy as sa
from alembic import op

revision = "host0001"
down_revision = None


def upgrade():
    op.create_table("events", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("what", sa.String(50), nullable=False))


def downgrade():
    op.drop_table("events")
'''


def _host_migrates(url: str, folder: Path) -> None:
    """The host's own Alembic history (its versions folder, ``alembic_version``), up."""
    host_migrates(
        url, folder, HOST_MIGRATION, "INSERT INTO events (id, what) VALUES (1, 'the host''s own')"
    )


def _tables(url: str, schema: str | None = None) -> set[str]:
    made = create_engine(url)
    try:
        return set(inspect(made).get_table_names(schema=schema))
    finally:
        made.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("host_first", [True, False], ids=["host-first", "casework-first"])
def test_casework_and_a_host_with_its_own_alembic_history_share_a_postgresql_database(
    empty_pg: str, tmp_path: Path, clock: FixedClock, host_first: bool
) -> None:
    if host_first:
        _host_migrates(empty_pg, tmp_path / "host")
    with Engine.open(empty_pg, schema="casework", clock=clock) as engine:
        case_id = open_sample(engine)
    if not host_first:
        _host_migrates(empty_pg, tmp_path / "host")
    assert {"events", "alembic_version"} <= _tables(empty_pg)
    assert "cases" not in _tables(empty_pg)
    assert {"events", "cases", "casework_alembic_version"} <= _tables(empty_pg, "casework")
    with Engine.open(empty_pg, schema="casework", clock=clock) as engine:
        assert [e.event for e in engine.history(case_id)] == ["open"]
        assert engine.verify().ok
    made = create_engine(empty_pg)
    with made.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "host0001"
        assert conn.execute(text("SELECT what FROM events")).scalars().all() == ["the host's own"]
    made.dispose()


@pytest.mark.postgres
def test_a_host_transaction_writes_into_caseworks_schema_and_keeps_its_search_path(
    empty_pg: str, tmp_path: Path, clock: FixedClock
) -> None:
    _host_migrates(empty_pg, tmp_path / "host")
    host = create_engine(empty_pg)
    with Engine.open(empty_pg, schema="casework", clock=clock) as engine:
        with host.begin() as conn:
            conn.execute(text("INSERT INTO events (id, what) VALUES (2, 'an order')"))
            case_id = open_sample(engine, connection=conn)
            engine.fire(case_id, "apologise", actor="li.na", connection=conn)
            assert conn.execute(text("SHOW search_path")).scalar() == '"$user", public'
            assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 2  # the host's
        assert [e.event for e in engine.history(case_id)] == ["open", "apologise"]
        assert engine.verify().ok
    host.dispose()


def _versioned_in_alembic_version(db_url: str) -> SAEngine:
    """A migrated database whose revision stands in ``alembic_version``, as casework kept
    it before it had a table of its own."""
    made = create_engine(db_url)
    with made.begin() as conn:
        conn.execute(text("DROP TABLE casework_alembic_version"))
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD})
    return made


def test_a_revision_in_alembic_version_moves_to_caseworks_own_table(
    db_url: str, clock: FixedClock
) -> None:
    """A database migrated before casework had a version table of its own."""
    made = _versioned_in_alembic_version(db_url)
    assert current_revision(made) == HEAD  # read where it was
    with Engine.open(db_url, clock=clock) as engine:
        open_sample(engine)
    tables = set(inspect(made).get_table_names())
    assert "casework_alembic_version" in tables
    assert "alembic_version" not in tables  # nothing else was in it
    made.dispose()


def test_a_shared_alembic_version_keeps_the_other_applications_row(
    db_url: str, clock: FixedClock
) -> None:
    made = _versioned_in_alembic_version(db_url)
    with made.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('host0001')"))
    Engine.open(db_url, clock=clock).close()
    with made.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "host0001"
        mine = conn.execute(text("SELECT version_num FROM casework_alembic_version")).scalar()
        assert mine == HEAD
    made.dispose()


def test_a_database_of_another_application_is_refused_naming_the_conflict(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'host.db'}"
    _host_migrates(url, tmp_path / "host")
    with pytest.raises(InvalidInput, match="alembic_version at revision host0001") as refused:
        Engine.open(url)
    assert refused.value.field == "db"
    assert str(refused.value).endswith(  # SQLite has no schemas: a prefix is the way
        "give casework a table prefix (`table_prefix`)"
    )
    only_events = f"sqlite:///{tmp_path / 'other.db'}"
    made = create_engine(only_events)
    with made.begin() as conn:
        conn.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY)"))
    made.dispose()
    with pytest.raises(InvalidInput, match=r"not casework's .*: events;"):
        Engine.open(only_events)


def test_a_schema_is_refused_where_it_cannot_hold(tmp_path: Path, host: SAEngine) -> None:
    with pytest.raises(InvalidInput, match="schema is PostgreSQL's"):
        Engine.open(f"sqlite:///{tmp_path / 'x.db'}", schema="casework")
    with pytest.raises(InvalidInput, match="a schema is given with a URL"):
        Engine.open(host, schema="casework")


@pytest.mark.postgres
def test_the_command_line_migrates_into_the_schema_it_is_given(empty_pg: str) -> None:
    from click.testing import CliRunner

    from casework.workflow.cli import main

    runner = CliRunner()
    migrated = runner.invoke(main, ["--db", empty_pg, "--db-schema", "casework", "migrate"])
    assert migrated.exit_code == 0, migrated.output
    assert "casework_alembic_version" in _tables(empty_pg, "casework")
    assert _tables(empty_pg) == set()
    listed = runner.invoke(
        main, ["--db", empty_pg, "list", "--json"], env={"CASEWORK_DB_SCHEMA": "casework"}
    )
    assert listed.exit_code == 0, listed.output
    assert _tables(empty_pg) == set()  # nothing made in public


@pytest.mark.postgres
def test_every_kind_of_statement_finds_caseworks_tables_in_its_schema(
    empty_pg: str, clock: FixedClock
) -> None:
    """The raw hot path, the deadline claims, the mail queue, searches, streamed
    snapshots, exports and the checkpoint heads, erasure with its compaction, all in
    schema ``casework``: nothing is made or read in ``public``."""
    from casework.workflow.testing import run_due

    with Engine.open(empty_pg, schema="casework", clock=clock, config=LOOPBACK) as engine:
        add(
            engine.context.store,
            "http://127.0.0.1:9/hook",
            "*",
            engine.settings.webhooks,
            clock.now(),
        )
        case_id = open_sample(engine, customer="CUST-7")
        engine.fire(case_id, MANUAL_ESCALATION, actor="li.na", data={"reason": "twice"})
        assert run_due(engine, clock.now() + timedelta(days=5))
        assert [c.id for c in engine.context.store.cases.find("CUST-7", 10)] == [case_id]
        assert engine.context.store.outbox.rows(kind="webhook")
        with engine.context.store.audit.export_rows() as rows:
            assert len(list(rows)) == len(engine.history(case_id))
        with engine.context.store.audit.case_heads(clock.now()) as heads:
            assert [h[0] for h in heads] == [case_id]
        assert engine.erase("CUST-7", actor="admin", reason="asked")["cases"] == [case_id]
        assert engine.verify().ok
    assert _tables(empty_pg) == set()


@pytest.mark.postgres
def test_the_servers_processes_open_the_schema_serve_was_given(
    empty_pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``casework serve`` hands the schema to its worker processes; they open the
    engine without migrating, which a schema they did not look in would refuse."""
    from casework.workflow.api.server import app_from_environment

    Engine.open(empty_pg, schema="casework").close()
    monkeypatch.setenv("CASEWORK_DATABASE_URL", empty_pg)
    monkeypatch.setenv("CASEWORK_DB_SCHEMA", "casework")
    app = app_from_environment()  # refused were the schema not looked in: not migrated
    while not hasattr(app, "state"):  # the application inside its middleware
        app = app.app
    engine = app.state.engine
    try:
        assert engine.db.url.database == empty_pg.rsplit("/", 1)[1]
    finally:
        engine.close()
