"""casework's tables under a prefix, beside a host application's same-named tables and
its own Alembic history in one SQLite file or one PostgreSQL schema."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, event, inspect, text

from casework.machines.definition import MANUAL_ESCALATION
from casework.storage.table_prefix import SCHEMA_NAMES, TablePrefix
from casework.storage.tables import metadata
from casework.workflow import Engine
from casework.workflow.clock import FixedClock
from casework.workflow.errors import InvalidInput
from casework.workflow.results import Case
from casework.workflow.testing import run_due
from tests.support import open_sample, wait_until
from tests.support.host_alembic import host_migrates

PREFIX = "cw_"
HOST_TABLES = ("events", "cases", "deadlines", "outbox", "host_notes")
HOST_MIGRATION = '''"""The host's first migration: tables named as casework's are, an index too."""
import sqlalchemy as sa
from alembic import op

revision = "host0001"
down_revision = None


def upgrade():
    for name in ("events", "cases", "deadlines", "outbox", "host_notes"):
        op.create_table(name, sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("what", sa.String(50), nullable=False),
                        sa.Column("status", sa.String(20), nullable=False),
                        sa.Column("next_attempt_at", sa.String(40), nullable=False))
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at"])


def downgrade():
    pass
'''
INSERTS = tuple(
    f"INSERT INTO {name} (id, what, status, next_attempt_at) "
    "VALUES (1, 'the host''s own', 'pending', '2000-01-01')"
    for name in HOST_TABLES
)
"""One row of the host's own in each of its tables."""


def _host_migrates(url: str, folder: Path) -> None:
    """The host's Alembic history (``alembic_version`` at ``host0001``) brought up, and
    one row of its own in each of its tables."""
    host_migrates(url, folder, HOST_MIGRATION, *INSERTS)


def _hosts_rows(url: str) -> dict[str, Any]:
    made = create_engine(url)
    with made.connect() as conn:
        rows: dict[str, Any] = {
            name: conn.execute(text(f"SELECT id, what FROM {name}")).all() for name in HOST_TABLES
        }
        versions = conn.execute(text("SELECT version_num FROM alembic_version"))
        rows["alembic_version"] = versions.all()
    made.dispose()
    return rows


def _watch_tables(engine: Engine) -> set[str]:
    """The tables every later SQLite connection of ``engine`` reads or writes (SQLite's
    authorizer sees each statement's tables)."""
    touched: set[str] = set()
    actions = {
        sqlite3.SQLITE_READ, sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE,
        sqlite3.SQLITE_DELETE, sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_DROP_INDEX,
    }  # fmt: skip

    def authorise(action: int, first: Any, *_: Any) -> int:
        if action in actions and first:
            touched.add(str(first))
        return sqlite3.SQLITE_OK

    @event.listens_for(engine.db, "connect")
    def _connected(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_authorizer(authorise)

    engine.db.dispose()  # the pooled connections go: the next ones are watched
    return touched


@pytest.mark.parametrize("host_first", [True, False], ids=["host-first", "casework-first"])
def test_casework_and_a_host_with_same_named_tables_share_a_sqlite_file(
    tmp_path: Path, clock: FixedClock, host_first: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    if host_first:
        _host_migrates(url, tmp_path / "host")
    with Engine.open(url, table_prefix=PREFIX, clock=clock) as engine:
        case_id = open_sample(engine)
    if not host_first:
        _host_migrates(url, tmp_path / "host")
    before = _hosts_rows(url)
    with Engine.open(url, table_prefix=PREFIX, clock=clock) as engine:
        touched = _watch_tables(engine)
        engine.fire(case_id, MANUAL_ESCALATION, actor="li.na", data={"reason": "twice"})
        other = open_sample(engine, customer="CUST-2")
        assert run_due(engine, clock.now() + timedelta(days=10))  # the worker's deadlines
        assert engine.verify(workers=1).ok
        assert engine.history(other)[0].event == "open"
        assert engine.erase("CUST-2", actor="admin", reason="asked")["cases"] == [other]
    assert _hosts_rows(url) == before
    assert before["alembic_version"] == [("host0001",)]
    assert touched, "the authorizer saw casework's statements"
    assert not touched & {*HOST_TABLES, "alembic_version"}, "the host's tables are never read"
    assert all(name.startswith(PREFIX) or name.startswith("sqlite_") for name in touched)


def test_the_command_line_exports_verifies_and_ticks_under_the_prefix(
    tmp_path: Path, clock: FixedClock
) -> None:
    """``--db-table-prefix`` (and ``CASEWORK_DB_TABLE_PREFIX``) reach migrate, the
    worker's one-shot ``tick``, ``verify`` and ``export``; the host's rows stay."""
    from casework.workflow.cli import main

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    _host_migrates(url, tmp_path / "host")
    before = _hosts_rows(url)
    runner = CliRunner()
    migrated = runner.invoke(main, ["--db", url, "--db-table-prefix", PREFIX, "migrate"])
    assert migrated.exit_code == 0, migrated.output
    with Engine.open(url, table_prefix=PREFIX, clock=clock) as engine:  # long ago: all due
        case_id = open_sample(engine)
    env = {"CASEWORK_DB_TABLE_PREFIX": PREFIX}
    ticked = runner.invoke(main, ["--db", url, "tick"], env=env)
    assert ticked.exit_code == 0, ticked.output
    verified = runner.invoke(main, ["--db", url, "verify"], env=env)
    assert verified.exit_code == 0, verified.output
    out = tmp_path / "export.jsonl"
    exported = runner.invoke(main, ["--db", url, "export", "--out", str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    events = [line for line in lines if line.get("case_id") == case_id]
    assert len(events) > 1  # opened, then escalated by the tick
    assert _hosts_rows(url) == before
    refused = runner.invoke(main, ["--db", url, "list"])  # no prefix: the host's tables
    assert refused.exit_code != 0
    assert "alembic_version at revision host0001" in refused.output


def test_every_name_casework_gives_the_file_takes_the_prefix_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    """The migrated schema under a prefix (SQLite's batch copies of tables included) is
    the schema without one, every table, index and trigger renamed; the host's alone
    are left unprefixed."""
    plain, shared = tmp_path / "plain.db", tmp_path / "shared.db"
    _host_migrates(f"sqlite:///{shared}", tmp_path / "host")
    Engine.open(f"sqlite:///{plain}").close()
    Engine.open(f"sqlite:///{shared}", table_prefix=PREFIX).close()

    def schema(path: Path) -> dict[str, list[str]]:
        with sqlite3.connect(path) as conn:
            found = conn.execute("SELECT name, sql FROM sqlite_master").fetchall()
        # a table's columns and constraints in any order (a batch copy may reorder them)
        return {
            name: sorted(line.strip(", \t") for line in (sql or "").splitlines())
            for name, sql in found
        }

    everything = schema(shared)
    mine = {n: s for n, s in everything.items() if PREFIX in n}
    assert set(everything) - set(mine) == {
        *HOST_TABLES, "alembic_version", "ix_outbox_status_next",
        "sqlite_autoindex_alembic_version_1",
    }  # fmt: skip
    unprefixed = {
        n.replace(PREFIX, "", 1): sorted(line.replace(PREFIX, "") for line in s)
        for n, s in mine.items()
    }
    assert unprefixed == schema(plain)


def test_a_table_casework_needs_that_is_not_caseworks_is_refused_under_the_prefix(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    made = create_engine(url)
    with made.begin() as conn:
        conn.execute(text("CREATE TABLE cw_events (id INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY)"))
    made.dispose()
    with pytest.raises(InvalidInput, match=r"not casework's .*: cw_events; .*table prefix"):
        Engine.open(url, table_prefix=PREFIX)
    Engine.open(url, table_prefix="cw2_").close()  # another prefix is free


@pytest.mark.parametrize(
    "prefix", ["CW_", "cw-", "_cw", "1cw", "a" * 17, "cw_;drop", "表_", "sqlite_", "sqlite_cw"]
)
def test_a_prefix_that_is_no_plain_name_is_refused(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(InvalidInput, match="is no table prefix") as refused:
        Engine.open(f"sqlite:///{tmp_path / 'x.db'}", table_prefix=prefix)
    assert refused.value.field == "db"
    assert "URL" not in str(refused.value)  # the URL is fine; the prefix is not
    assert not (tmp_path / "x.db").exists()  # refused before the file is made


def test_a_hosts_engine_keeps_its_own_names_and_casework_joins_its_transaction(
    tmp_path: Path, clock: FixedClock
) -> None:
    """On the host's own SQLAlchemy engine, only casework's statements are translated:
    the host's ``events`` stays the host's, inside one transaction with casework's."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    _host_migrates(url, tmp_path / "host")
    host = create_engine(url)
    with Engine.open(host, table_prefix=PREFIX, clock=clock) as engine:
        with host.begin() as conn:
            conn.execute(text("INSERT INTO events (id, what, status, next_attempt_at) "
                              "VALUES (2, 'an order', 'new', '2000-01-01')"))  # fmt: skip
            case_id = open_sample(engine, connection=conn)
            engine.fire(case_id, "apologise", actor="li.na", connection=conn)
            assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 2
        with host.begin() as conn:  # a file kept in the host's transaction (SQLAlchemy Core)
            engine.attach(case_id, b"%PDF report", kind="test_report", name="r.pdf",
                          actor="li.na", connection=conn)  # fmt: skip
            assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 2
        assert [e.event for e in engine.history(case_id)] == ["open", "apologise", "attach"]
        assert engine.verify(workers=1).ok
    with host.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cw_events")).scalar() == 3
        assert conn.execute(text("SELECT count(*) FROM cw_attachments")).scalar() == 1
    host.dispose()


@pytest.mark.postgres
def test_a_prefix_combines_with_a_schema_of_caseworks_own(
    empty_pg: str,
    clock: FixedClock,
) -> None:
    with Engine.open(empty_pg, schema="casework", table_prefix=PREFIX, clock=clock) as engine:
        case_id = open_sample(engine)
        assert [e.event for e in engine.history(case_id)] == ["open"]
        assert engine.verify(workers=1).ok
    made = create_engine(empty_pg)
    tables = set(inspect(made).get_table_names(schema="casework"))
    assert set(inspect(made).get_table_names()) == set()
    made.dispose()
    assert {"cw_cases", "cw_events", "cw_casework_alembic_version"} <= tables
    assert all(name.startswith(PREFIX) for name in tables)


@pytest.mark.postgres
def test_casework_and_a_host_with_same_named_tables_share_postgresqls_public_schema(
    empty_pg: str,
    tmp_path: Path,
    clock: FixedClock,
) -> None:
    _host_migrates(empty_pg, tmp_path / "host")
    before = _hosts_rows(empty_pg)
    with Engine.open(empty_pg, table_prefix=PREFIX, clock=clock) as engine:
        case_id = open_sample(engine, customer="CUST-7")
        engine.fire(case_id, MANUAL_ESCALATION, actor="li.na", data={"reason": "twice"})
        assert run_due(engine, clock.now() + timedelta(days=5))
        assert engine.verify(workers=1).ok
        assert engine.erase("CUST-7", actor="admin", reason="asked")["cases"] == [case_id]
        assert engine.verify(workers=1).ok
    with Engine.open(empty_pg, table_prefix="cw2_", clock=clock) as second:  # and a second
        assert open_sample(second) != case_id
    assert _hosts_rows(empty_pg) == before
    made = create_engine(empty_pg)
    tables = set(inspect(made).get_table_names())
    indexes = {i["name"] for t in tables for i in inspect(made).get_indexes(t)}
    made.dispose()
    assert {"cw_events", "cw_casework_alembic_version", "cw2_events"} <= tables
    assert {"ix_outbox_status_next", "cw_ix_outbox_status_next"} <= indexes
    assert "casework_alembic_version" not in tables


def test_the_names_translated_are_the_schemas() -> None:
    """Every table, index and named constraint of the schema, and nothing else."""
    names = set()
    for table in metadata.tables.values():
        names.add(table.name)
        names.update(str(index.name) for index in table.indexes if index.name)
        names.update(str(c.name) for c in table.constraints if isinstance(c.name, str))
    assert names == SCHEMA_NAMES


def test_the_rewrite_names_tables_never_columns_literals_or_others_names() -> None:
    tables = TablePrefix("cw_")
    cases = {
        "SELECT webhooks.events, jobs.jobs FROM webhooks, jobs WHERE jobs.jobs > 1":
            "SELECT cw_webhooks.events, cw_jobs.jobs FROM cw_webhooks, cw_jobs "
            "WHERE cw_jobs.jobs > 1",
        "INSERT INTO jobs (day, jobs) VALUES (?, ?)":
            "INSERT INTO cw_jobs (day, jobs) VALUES (?, ?)",
        "UPDATE webhooks SET events = 'events' WHERE url = %(events)s":
            "UPDATE cw_webhooks SET events = 'events' WHERE url = %(events)s",
        'SELECT "cases".id FROM "cases" JOIN events e ON e.case_id = "cases".id':
            'SELECT "cw_cases".id FROM "cw_cases" JOIN cw_events e ON e.case_id = "cw_cases".id',
        "CREATE INDEX ix_cases_state ON cases (state)":
            "CREATE INDEX cw_ix_cases_state ON cw_cases (state)",
        "ALTER TABLE _alembic_tmp_outbox RENAME TO outbox":
            "ALTER TABLE _alembic_tmp_outbox RENAME TO cw_outbox",
        'PRAGMA main.table_xinfo("outbox")': 'PRAGMA main.table_xinfo("cw_outbox")',
        "SELECT count(*) AS cases FROM host_orders": "SELECT count(*) AS cases FROM host_orders",
        "VACUUM (FULL, SKIP_LOCKED) outbox": "VACUUM (FULL, SKIP_LOCKED) cw_outbox",
        "SELECT id FROM cases WHERE id IN (SELECT case_id FROM events -- events\n)":
            "SELECT id FROM cw_cases WHERE id IN (SELECT case_id FROM cw_events -- events\n)",
    }  # fmt: skip
    for statement, expected in cases.items():
        assert tables.sql(statement) == expected, statement
    catalog = "SELECT sql FROM sqlite_master WHERE name = ? AND type = 'table'"
    assert tables.parameters(catalog, ("outbox",)) == ("cw_outbox",)
    assert tables.parameters("SELECT * FROM outbox WHERE kind = ?", ("events",)) == ("events",)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    _host_migrates(url, tmp_path / "host")
    Engine.open(url, table_prefix=PREFIX).close()
    monkeypatch.setenv("CASEWORK_DATABASE_URL", url)
    monkeypatch.setenv("CASEWORK_DB_TABLE_PREFIX", PREFIX)
    return url


def test_the_servers_processes_open_the_tables_serve_was_given(served: str) -> None:
    """``casework serve`` hands the prefix to its worker processes, which open the
    engine without migrating: refused, were the prefix not used."""
    from casework.workflow.api.server import app_from_environment

    app = app_from_environment()
    while not hasattr(app, "state"):  # the application inside its middleware
        app = app.app
    engine = app.state.engine
    try:
        assert open_sample(engine)
    finally:
        engine.close()


@pytest.mark.postgres
def test_a_prefixed_installation_hears_its_own_deadlines_only(
    pg_url: str, clock: FixedClock
) -> None:
    """Each table prefix has its own ``NOTIFY`` channel: a worker of one installation
    is not woken by another's deadlines in the same database. (The server delivers in
    commit order, so the other's, committed first, would have come first.)"""
    heard: list[datetime] = []
    with (
        Engine.open(pg_url, clock=clock) as plain,
        Engine.open(pg_url, table_prefix=PREFIX, clock=clock) as prefixed,
    ):
        listener = prefixed.context.store.deadlines.listen(heard.append, lambda err: None)
        assert listener is not None
        try:
            assert listener.listening.wait(60), "the listener listens"
            others = plain.open_case(customer="C-1", channel="phone", category="other",
                                     summary="plain", received_at=clock.now())  # fmt: skip
            clock.advance(timedelta(minutes=1))
            mine = prefixed.open_case(customer="C-2", channel="phone", category="other",
                                      summary="prefixed", received_at=clock.now())  # fmt: skip
            wait_until(lambda: _first_due(mine) in heard, what="its own deadline")
            assert _first_due(others) not in heard
        finally:
            listener.stop()


@pytest.mark.postgres
def test_write_access_is_judged_on_the_prefixed_tables(
    empty_pg: str,
) -> None:
    """The privileges asked about are those of casework's tables under the prefix (the
    plain names are no tables here, which PostgreSQL would refuse to judge)."""
    from casework.storage.database import write_access

    with Engine.open(empty_pg, table_prefix=PREFIX) as engine:
        assert (
            write_access(engine.db) == "this database role may write to the events and cases tables"
        )


def _first_due(case: Case) -> datetime:
    return min(datetime.fromisoformat(d["due_at"]) for d in case.deadlines)


def test_a_hosts_autogenerate_leaves_caseworks_tables_to_casework(tmp_path: Path) -> None:
    """The host's ``alembic revision --autogenerate`` would drop casework's tables, which
    its metadata does not hold, unless its ``include_name`` leaves the prefix's names out
    (as README's embedding section shows)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import MetaData

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    _host_migrates(url, tmp_path / "host")
    Engine.open(url, table_prefix=PREFIX).close()
    host = create_engine(url)
    hosts_own = MetaData()  # the host's models: its own tables as they are
    hosts_own.reflect(host, only=lambda name, _: not name.startswith(PREFIX))

    def include_name(name: str | None, type_: str, _parents: object) -> bool:
        return not (type_ == "table" and name is not None and name.startswith(PREFIX))

    with host.connect() as conn:
        unfiltered = compare_metadata(MigrationContext.configure(conn), hosts_own)
        options: dict[str, Any] = {"include_name": include_name}
        filtered = compare_metadata(MigrationContext.configure(conn, opts=options), hosts_own)
    host.dispose()
    dropped = {diff[1].name for diff in unfiltered if diff[0] == "remove_table"}
    assert {PREFIX + "events", PREFIX + "cases"} <= dropped  # what the README warns of
    assert filtered == []
