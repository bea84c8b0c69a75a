"""Shared fixtures: a real SQLite file and a real PostgreSQL database per test, a fixed clock.

The tests run in a non-UTC local time zone so that a naive datetime cannot pass
unnoticed. PostgreSQL tests skip with a reason where no server answers, and fail
under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from casework.workflow import Engine, FixedClock
from tests.support import PG_ADMIN, START
from tests.support.pg_databases import Throwaways

os.environ["TZ"] = "America/New_York"
time.tzset()

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _pg_reason() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except psycopg.Error as err:
        return f"no PostgreSQL server at {PG_ADMIN}: {str(err).strip().splitlines()[0]}"


@contextmanager
def _new_database(name: str) -> Iterator[str]:
    """Database ``name``, new and empty, dropped afterwards; skipped where no PostgreSQL
    server answers, failed under CI."""
    reason = _pg_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI: {reason}")
        pytest.skip(reason)
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database for this test run, dropped at the end."""
    with _new_database(f"casework_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}") as name:
        engine = Engine.open(_url(name))
        engine.close()
        yield name


def _admin(statement: sql.Composable) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(statement)


def _url(database: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + (
        f"/{database}"
    )


@pytest.fixture
def empty_pg() -> Iterator[str]:
    """An empty PostgreSQL database (not migrated), dropped afterwards."""
    with _new_database(f"casework_empty_{uuid.uuid4().hex[:10]}") as name:
        yield _url(name)


@pytest.fixture(scope="session")
def pg_throwaways(pg_template: str) -> Iterator[Throwaways]:
    """Copies of the template made ahead and dropped behind while tests run."""
    made = Throwaways(PG_ADMIN, pg_template)
    yield made
    made.close()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A throwaway PostgreSQL database, a copy of the migrated template. A test that also
    needs the bouncer is skipped, where none can run, before anything is made."""
    if "bouncer" in request.fixturenames:
        request.getfixturevalue("bouncer")
    made: Throwaways = request.getfixturevalue("pg_throwaways")
    name = made.take()
    yield _url(name)
    made.give_back(name)


POOLED_MODULES = frozenset({
    "test_engine", "test_sla", "test_verify", "test_concurrency", "test_store",
    "test_reclassify", "test_privacy", "test_waiting", "test_relations",
    "test_erasure_copies",
})  # fmt: skip
"""The engine's own tests, run a third time through pgbouncer in transaction pooling
mode: nothing in them may rely on session state."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The :data:`POOLED_MODULES` take ``db_url`` on SQLite, PostgreSQL and PostgreSQL
    behind pgbouncer."""
    if "db_url" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    pooled = [pytest.param("pgbouncer", marks=pytest.mark.postgres)]
    backends = [*BACKENDS, *pooled] if module in POOLED_MODULES else BACKENDS
    metafunc.parametrize("db_url", backends, indirect=True)


@pytest.fixture(scope="session")
def bouncer() -> Iterator[Any]:
    """pgbouncer in transaction pooling mode before the machine's PostgreSQL."""
    from tests.support.bouncer import Bouncer, missing

    reason = missing() or _pg_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"pgbouncer is required under CI: {reason}")
        pytest.skip(reason)
    running = Bouncer(("127.0.0.1", int(PG_ADMIN.rsplit(":", 1)[1].split("/")[0])))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file for this test run: each test copies it (no migration each)."""
    path = tmp_path_factory.mktemp("template") / "casework.db"
    Engine.open(f"sqlite:///{path}").close()  # the last connection folds the WAL in
    return path


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database with the current schema and no cases: a SQLite file (a copy
    of the migrated template), or a PostgreSQL database (made from its template)."""
    return database_url(request, request.param, tmp_path)


def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """:func:`db_url` for ``backend`` (``sqlite``, ``postgres`` or ``pgbouncer``)."""
    if backend == "sqlite":
        path = tmp_path / "casework.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        path.chmod(0o600)
        return f"sqlite:///{path}"
    if backend == "pgbouncer":  # skipped before a database is made, if need be
        bouncer = request.getfixturevalue("bouncer")
        url: str = request.getfixturevalue("pg_url")
        return str(bouncer.url(url.rsplit("/", 1)[1]))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def clock() -> FixedClock:
    """A clock standing at :data:`START` until a test moves it."""
    return FixedClock(START)


@pytest.fixture
def engine(db_url: str, clock: FixedClock) -> Iterator[Engine]:
    """An engine on the test's database with the fixed clock."""
    engine = Engine.open(db_url, clock=clock)
    yield engine
    engine.close()


@pytest.fixture
def server() -> Iterator[Any]:
    """A scripted SMTP server on loopback (aiosmtpd), running."""
    from tests.support.mail_server import TestServer

    smtp = TestServer()
    smtp.start()
    yield smtp
    smtp.stop()


@pytest.fixture
def api(engine: Engine) -> Iterator[Any]:
    """The HTTP API and console of ``engine`` on loopback (a ``Served``), running."""
    from tests.support.api_server import serving

    with serving(engine) as served:
        yield served


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fast lane (``-m "not slow"``) runs every test on SQLite and the storage
    contract on both databases; the PostgreSQL run of the rest (a database made per
    test) comes with the full suite."""
    for item in items:
        if item.get_closest_marker("postgres") and "contract" not in item.path.parts:
            item.add_marker(pytest.mark.slow)
