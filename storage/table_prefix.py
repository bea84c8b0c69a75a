"""casework's tables under a prefix (``cw_cases``, ``cw_events``...), so that casework
shares one database with a host application whose tables have the same names: one
SQLite file (SQLite has no schemas), or one PostgreSQL schema.

Every name casework gives the database takes the prefix: its tables, their indexes
(per database on SQLite, per schema on PostgreSQL), named constraints, triggers and
the PostgreSQL function behind one, and its Alembic version table.

Design: one translation at the connection, not names threaded through every statement.
Statements, ORM and Core ones, hand-written SQL, the migrations and Alembic's own
(SQLite's batch copies and their reflection included), are written with the plain
names; a ``before_cursor_execute`` hook of the engine rewrites each statement once
(cached per statement text) before the driver sees it, and the few places that use
the driver's cursor directly (the hot path, snapshots) pass their statements through
the same :meth:`TablePrefix.sql`. Nothing can be missed that way, and the statements
stay readable. The rewrite is exact: it tokenises the statement (string literals,
quoted identifiers, comments, parameters), and changes only a known name in a place
where SQL names a table, index, constraint, trigger or function (after ``FROM``,
``JOIN``, ``INTO``, ``UPDATE``, ``TABLE``, ``INDEX``, ``ON``, ``REFERENCES``...,
in a ``FROM`` list, or before a ``.``), never a column that happens to share one
(``webhooks.events``, ``jobs.jobs``). A statement that reads the catalog
(``sqlite_master``, ``pg_catalog``, ``regclass``...) gets known names among its
parameters prefixed, so that introspection (Alembic's, SQLAlchemy's reflection,
ours) asks about casework's tables, never the host's.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, event

from casework.storage.errors import UnusableName

PREFIX = re.compile(r"(?!sqlite_)[a-z][a-z0-9_]{0,15}")
"""A table prefix: lower-case letters, digits and ``_``, a letter first, at most 16, and
not ``sqlite_`` (SQLite keeps those names to itself)."""
SCHEMA_NAMES = frozenset({
    "api_tokens", "attachments", "cases", "casework_meta", "console_sessions", "deadlines",
    "events", "idempotency_keys", "jobs", "outbox", "partners", "personal_data",
    "sla_policies", "subjects", "webhooks", "worker_heartbeats",
    "ix_cases_owner", "ix_cases_received_at", "ix_cases_state", "ix_deadlines_case_id",
    "ix_deadlines_status_due", "ix_jobs_done_at", "ix_outbox_status_next",
    "ix_personal_field_value", "ix_personal_subject", "uq_deadlines_key",
})  # fmt: skip
"""casework's tables, their indexes and named constraints as :mod:`casework.storage.tables`
names them, written out so that translating loads no table classes (a test holds the
two equal)."""
EXTRA_NAMES = frozenset({
    "casework_alembic_version", "casework_alembic_version_pkc",  # Alembic's version table
    "events_no_update", "events_no_delete",  # SQLite's triggers keeping events append-only
    "events_append_only", "casework_events_append_only",  # PostgreSQL's trigger, its function
})  # fmt: skip
"""Names casework gives the database besides its tables, indexes and constraints."""

_TOKENS = re.compile(
    r"'(?:[^']|'')*'"  # a string literal: never rewritten
    r'|"((?:[^"]|"")*)"'  # 1: a quoted identifier
    r"|\$(\w*)\$.*?\$\2\$"  # 2: a dollar-quoted body (PostgreSQL)
    r"|--[^\n]*|/\*.*?\*/"  # a comment
    r"|%\(\w+\)s"  # a named driver parameter
    r"|\d[\w.]*"  # a number
    r"|([A-Za-z_]\w*)"  # 3: a word
    r"|(\S)",  # 4: anything else
    re.DOTALL,
)
_DOT = re.compile(r"\s*\.")
_NAME_BEFORE = frozenset({
    "FROM", "JOIN", "INTO", "UPDATE", "TABLE", "REFERENCES", "ON", "INDEX", "EXISTS", "TO",
    "CONSTRAINT", "TRIGGER", "FUNCTION", "OF",
})  # fmt: skip
"""The words after which SQL names a table, index, constraint, trigger or function."""
_PRAGMAS = frozenset(
    {"TABLE_INFO", "TABLE_XINFO", "INDEX_LIST", "INDEX_INFO", "INDEX_XINFO", "FOREIGN_KEY_LIST"}
)
"""SQLite's pragmas that take a table or index name in parentheses."""
_FROM_ENDS = frozenset({
    "WHERE", "ON", "USING", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "UNION", "EXCEPT",
    "INTERSECT", "WINDOW", "RETURNING", "FOR", "SET", "VALUES", "SELECT",
})  # fmt: skip
_CATALOG = re.compile(
    r"sqlite_master|sqlite_temp_master|sqlite_schema|pg_catalog|pg_class|information_schema"
    r"|regclass|has_table_privilege",
    re.IGNORECASE,
)
"""What marks a statement that reads the catalog, its parameters naming tables."""


NAMES = SCHEMA_NAMES | EXTRA_NAMES
"""Every name casework gives the database (before a prefix)."""


class TablePrefix:
    """The prefix of one engine's tables, and the translation of its statements."""

    def __init__(self, prefix: str) -> None:
        if not PREFIX.fullmatch(prefix):
            raise UnusableName(
                f"{prefix!r} is no table prefix (lower-case letters, digits and _, "
                "a letter first, at most 16, not sqlite_)"
            )
        self.prefix = prefix
        self.names = NAMES
        self.sql = lru_cache(maxsize=4096)(self._rewrite)
        self._reads_catalog = lru_cache(maxsize=1024)(lambda s: bool(_CATALOG.search(s)))

    def name(self, name: str) -> str:
        """The name casework's ``name`` (a table, index...) has in the database."""
        return self.prefix + name if name in self.names else name

    def parameters(self, statement: str, parameters: Any) -> Any:
        """``parameters`` of ``statement``, known names prefixed where it reads the catalog."""
        if not parameters or not self._reads_catalog(statement):
            return parameters
        return self._named(parameters)

    def _named(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.name(value)
        if isinstance(value, dict):
            return {k: self._named(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._named(v) for v in value)
        return value

    def _rewrite(self, statement: str) -> str:
        """``statement`` with casework's names prefixed (see the module's docstring)."""
        names, prefix = self.names, self.prefix
        parts: list[str] = []
        done = 0
        prev = prev2 = ""
        from_list = [False]
        vacuum: bool | None = None
        for match in _TOKENS.finditer(statement):
            quoted, word, other = match.group(1), match.group(3), match.group(4)
            if other is not None:
                if other == "(":
                    from_list.append(False)
                elif other == ")" and len(from_list) > 1:
                    from_list.pop()
                prev2, prev = prev, other
                continue
            if quoted is None and word is None:
                if not match.group().startswith(("--", "/*")):
                    prev2, prev = prev, "?"
                continue
            name = word if word is not None else quoted.replace('""', '"')
            upper = word.upper() if word is not None else '"'
            if vacuum is None:
                vacuum = upper == "VACUUM"
            if (
                name in names
                and prev != "."
                and (
                    prev in _NAME_BEFORE
                    or (prev == "(" and prev2 in _PRAGMAS)
                    or (prev == "," and from_list[-1])
                    or vacuum
                    or _DOT.match(statement, match.end())
                )
            ):
                new = prefix + name if word is not None else f'"{prefix}{quoted}"'
                parts += [statement[done : match.start()], new]
                done = match.end()
            if upper in ("FROM", "JOIN"):
                from_list[-1] = True
            elif upper in _FROM_ENDS:
                from_list[-1] = False
            prev2, prev = prev, upper
        if not parts:
            return statement
        parts.append(statement[done:])
        return "".join(parts)


def prefix_of(engine: Engine | Connection) -> TablePrefix | None:
    """The table prefix of an engine (or of a connection of it), if it has one."""
    found: TablePrefix | None = getattr(engine.engine, "_casework_tables", None)
    return found


def use_prefix(engine: Engine, prefix: TablePrefix | str | None) -> Engine:
    """``engine`` with casework's tables under ``prefix`` (``None`` or ``""``: as it is).

    Give an engine of casework's own, or a copy of a host's (``execution_options()``):
    every statement on its connections is translated."""
    if not prefix:
        return engine
    tables = prefix if isinstance(prefix, TablePrefix) else TablePrefix(prefix)
    engine._casework_tables = tables  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", _translator(tables), retval=True)
    return engine


def _translator(tables: TablePrefix) -> Any:
    def translate(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> tuple[str, Any]:
        return tables.sql(statement), tables.parameters(statement, parameters)

    return translate


@contextlib.contextmanager
def translated(connection: Connection, engine: Engine) -> Iterator[Connection]:
    """A host's ``connection`` whose statements are translated for ``engine``'s tables
    while the block runs (nothing changes without a prefix, or on one of its own)."""
    tables = prefix_of(engine)
    if tables is None or prefix_of(connection) is tables:
        yield connection
        return
    hook = _translator(tables)
    event.listen(connection, "before_cursor_execute", hook, retval=True)
    try:
        yield connection
    finally:
        event.remove(connection, "before_cursor_execute", hook)


class PrefixedCursor:
    """A driver cursor whose statements are translated (see :func:`cursor_for`)."""

    __slots__ = ("_cursor", "_sql")

    def __init__(self, cursor: Any, tables: TablePrefix) -> None:
        self._cursor = cursor
        self._sql = tables.sql

    def execute(self, statement: str, parameters: Any = ()) -> PrefixedCursor:
        """Run ``statement``, translated."""
        self._cursor.execute(self._sql(statement), parameters)
        return self

    def executemany(self, statement: str, parameters: Any) -> None:
        """Run ``statement``, translated, for each of ``parameters``."""
        self._cursor.executemany(self._sql(statement), parameters)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def cursor_for(cursor: Any, engine: Engine) -> Any:
    """A driver cursor for ``engine``'s statements: ``cursor`` itself without a prefix."""
    tables = prefix_of(engine)
    return cursor if tables is None else PrefixedCursor(cursor, tables)


def sql_for(engine: Engine, statement: str) -> str:
    """``statement`` as the driver is to run it on ``engine``'s database."""
    tables = prefix_of(engine)
    return statement if tables is None else tables.sql(statement)
