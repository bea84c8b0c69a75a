"""The stores the contract runs on, and what it checks after every test.

Each contract test runs on SQLite (a copy of the migrated template), PostgreSQL (a
``WAL_LOG`` copy of it) and PostgreSQL behind pgbouncer, each with casework's tables
named as they are by default and under a table prefix, and on the in-memory reference
store.
It names the port methods it covers with ``@pytest.mark.covers(...)``: the test must
call each of them, and ``test_coverage.py`` holds the names to the port. After the
test no connection may be left checked out of any store it opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast, get_type_hints

import pytest
from sqlalchemy import Engine as SAEngine

from casework.storage import make_engine
from casework.storage.memory import MemoryStore
from casework.storage.migrate import upgrade
from casework.storage.port import Store
from casework.storage.sql_store import SqlStore
from tests.conftest import database_url

PASSED = pytest.StashKey[bool]()
"""Whether a test's call passed (its covered methods are checked only then)."""
PREFIX = "cw_"
STORES = [
    *(
        pytest.param((backend, prefix), id=backend + ("-prefixed" if prefix else ""),
                     marks=[pytest.mark.postgres] if backend != "sqlite" else [])
        for backend in ("sqlite", "postgres", "pgbouncer")
        for prefix in (None, PREFIX)
    ),
    pytest.param(("memory", None), id="memory"),
]  # fmt: skip


def port_roles() -> dict[str, type]:
    """The store's roles (``store.cases``, ...) by name, each its Protocol."""
    return {
        name: get_type_hints(value.fget)["return"]
        for name, value in vars(Store).items()
        if isinstance(value, property)
    }


def port_methods() -> frozenset[str]:
    """Every method of the storage port: the store's own (``transaction``) and each
    role's (``cases.insert``)."""
    own = {n for n, v in vars(Store).items() if callable(v) and not n.startswith("_")}
    of_roles = {
        f"{role}.{name}"
        for role, protocol in port_roles().items()
        for name, value in vars(protocol).items()
        if callable(value) and not name.startswith("_")
    }
    return frozenset(own | of_roles)


class Recorded:
    """A store (or one of its roles, under ``prefix``) that notes which port methods a
    test reaches for."""

    def __init__(self, inner: Any, reached: set[str], prefix: str = "") -> None:
        self._inner, self._reached, self._prefix = inner, reached, prefix

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not self._prefix and name in port_roles():
            return Recorded(value, self._reached, f"{name}.")
        if self._prefix + name in port_methods():
            self._reached.add(self._prefix + name)
        return value


class Backing:
    """Where a test's stores keep their rows: one database, or one memory store's rows.
    Stores opened on it are checked and closed after the test."""

    def __init__(self, kind: str, url: str | None, prefix: str | None = None) -> None:
        self.kind, self.url, self.prefix = kind, url, prefix
        self.memory = MemoryStore() if url is None else None
        self.opened: list[tuple[Store, SAEngine | None]] = []
        self.reached: set[str] = set()
        self.hosts: list[SAEngine] = []

    def open(self, *, read_only: bool = False) -> Store:
        """A store on the backing (refusing every write, if ``read_only``)."""
        store: Store
        engine: SAEngine | None = None
        if self.memory is not None:
            store = self.memory.twin(read_only=read_only) if read_only else self.memory
        else:
            assert self.url is not None
            engine = make_engine(self.url, read_only=read_only, table_prefix=self.prefix)
            store = SqlStore(engine)
        self.opened.append((store, engine))
        return cast(Store, Recorded(store, self.reached))

    def host_engine(self) -> SAEngine:
        """An engine a host would hold on the same database (any database, for the
        memory store, which joins none)."""
        engine = make_engine(self.url or "sqlite://")
        self.hosts.append(engine)
        return engine

    def checked_out(self) -> int:
        """How many connections the stores opened have checked out now."""
        return sum(checked_out(store) for store, _ in self.opened)

    def close(self) -> None:
        for store, engine in self.opened:
            store.close()
            if engine is not None:
                engine.dispose()
        for engine in self.hosts:
            engine.dispose()


def checked_out(store: Store) -> int:
    """Connections (or the memory store's write lock) the store holds now."""
    assert isinstance(store, MemoryStore | SqlStore)
    return store.held()


@pytest.fixture(params=STORES)
def backing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backing]:
    """The test's database (or memory store); afterwards no connection is checked out,
    and every method the test says it covers was called."""
    kind, prefix = request.param
    url = None if kind == "memory" else database_url(request, kind, tmp_path)
    if url is not None and prefix is not None:  # the template holds the plain tables only
        engine = make_engine(url, table_prefix=prefix)
        upgrade(engine)
        engine.dispose()
    made = Backing(kind, url, prefix)
    try:
        yield made
        assert made.checked_out() == 0, "a connection was left checked out"
        marker = request.node.get_closest_marker("covers")
        declared = set(marker.args) if marker is not None else set()
        if request.node.stash.get(PASSED, False):
            assert declared <= made.reached, f"not called: {sorted(declared - made.reached)}"
    finally:
        made.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[pytest.TestReport]:
    """Note whether the test's call passed."""
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[PASSED] = report.passed
    return report


@pytest.fixture
def store(backing: Backing) -> Store:
    """The port on a store with the current schema and nothing in it."""
    return backing.open()
