"""Shared fixtures: a real SQLite file and a real PostgreSQL database per test, a fixed clock.

The tests run in a non-UTC local time zone so that a naive datetime cannot pass
unnoticed. PostgreSQL tests skip with a reason where no server answers, and fail
under ``CI=true``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from workflow import Engine, FixedClock

os.environ["TZ"] = "America/New_York"
time.tzset()

PG_ADMIN = os.environ.get("CASEWORK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _pg_reason() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except psycopg.Error as err:
        return f"no PostgreSQL server at {PG_ADMIN}: {str(err).strip().splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database for this test run, dropped at the end."""
    reason = _pg_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI: {reason}")
        pytest.skip(reason)
    name = f"casework_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _url(name)
    engine = Engine.open(url)
    engine.close()
    yield name
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _admin(statement: sql.Composable) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(statement)


def _url(database: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + (
        f"/{database}"
    )


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A throwaway PostgreSQL database, copied from the migrated template."""
    template: str = request.getfixturevalue("pg_template")
    name = f"casework_t_{uuid.uuid4().hex[:12]}"
    _admin(
        sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    )
    yield _url(name)
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """The URL of an empty database: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/casework.db"
    url: str = request.getfixturevalue("pg_url")
    return url


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
    from tests.mail_server import TestServer

    smtp = TestServer()
    smtp.start()
    yield smtp
    smtp.stop()
