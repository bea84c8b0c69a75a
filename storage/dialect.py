"""Every difference between SQLite and PostgreSQL that casework's own SQL meets, in one place.

The statements elsewhere in :mod:`storage` are written once and take their dialect's
pieces from here: the parameter mark, JSON casts, row locks, how a time is bound and
read back as text, how a write transaction and a snapshot begin and end, and how rows
are streamed. (The schema's own differences live in the tables and migrations, where
SQLAlchemy renders them; how a connection is set up, WAL and pragmas on SQLite and the
psycopg driver for PostgreSQL URLs, lives in :mod:`casework.storage.database`.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from casework.storage.timestamps import as_utc, iso

PG_MIGRATION_LOCK = 0x636173657764
"""An arbitrary advisory-lock key ("casewd") that migrations take on PostgreSQL."""
BATCH_ROWS = 5000
"""Rows fetched per round trip when streaming."""

_PG_TEXT_TIME = "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
"""PostgreSQL renders a timestamptz as its canonical UTC text itself (no parse, no format)."""


@dataclass(frozen=True)
class Dialect:
    """The pieces of SQL and driver use that differ by database."""

    sqlite: bool

    @property
    def mark(self) -> str:
        """The driver's parameter mark."""
        return "?" if self.sqlite else "%s"

    @property
    def json_mark(self) -> str:
        """The mark of a JSON value given as text."""
        return "?" if self.sqlite else "%s::json"

    @property
    def lock(self) -> str:
        """What locks selected rows against other writers (SQLite's BEGIN IMMEDIATE
        already holds the database's one write lock)."""
        return "" if self.sqlite else " FOR UPDATE"

    @property
    def skip_locked(self) -> str:
        """What locks selected rows and passes over those another claim holds."""
        return "" if self.sqlite else " FOR UPDATE SKIP LOCKED"

    @property
    def migration_lock(self) -> str | None:
        """What a migration runs first so that two processes never migrate at once
        (SQLite's write lock, taken at BEGIN, already does)."""
        return None if self.sqlite else f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})"

    def time(self, moment: datetime) -> Any:
        """A time as the driver binds it: canonical UTC text on SQLite, aware on PostgreSQL."""
        return iso(moment) if self.sqlite else as_utc(moment)

    def json_object_agg(self, key: str, value: str) -> str:
        """An aggregate building a JSON object text of ``key`` -> ``value`` rows."""
        if self.sqlite:
            return f"json_group_object({key}, {value})"
        return f"json_object_agg({key}, {value})::text"

    def time_text(self, column: str) -> str:
        """A time column selected as canonical UTC text."""
        return column if self.sqlite else _PG_TEXT_TIME.format(column)

    def seconds_between(self, later: str, earlier: str) -> str:
        """SQL for the seconds from time column ``earlier`` to ``later``."""
        if self.sqlite:
            return f"((julianday({later}) - julianday({earlier})) * 86400.0)"
        return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"

    def select_list(
        self, columns: Sequence[str], times: frozenset[str], texts: frozenset[str], table: str = ""
    ) -> str:
        """The columns (of ``table``, a prefix such as ``e.``), times as canonical text
        and JSON columns (``texts``) as stored text, for the caller to decode (orjson
        decodes several times faster than the driver's standard library)."""
        names = [table + c for c in columns]
        if self.sqlite:
            return ", ".join(names)
        return ", ".join(
            self.time_text(n) if c in times else f"{n}::text" if c in texts else n
            for c, n in zip(columns, names, strict=True)
        )

    def begin_write(self, cursor: Any) -> None:
        """Start a write transaction (SQLite takes its write lock now)."""
        if self.sqlite:
            cursor.execute("BEGIN IMMEDIATE")

    def end_write(self, raw: Any, cursor: Any, *, commit: bool) -> None:
        """Commit or roll back what :meth:`begin_write` started."""
        if self.sqlite:
            cursor.execute("COMMIT" if commit else "ROLLBACK")
        elif commit:
            raw.commit()
        else:
            raw.rollback()

    def begin_snapshot(self, raw: Any) -> None:
        """Start a read-only transaction that sees one consistent snapshot."""
        if self.sqlite:
            raw.cursor().execute("BEGIN")
        else:
            raw.cursor().execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def stream_rows(
        self, raw: Any, statement: str, params: Sequence[Any], types: Sequence[str]
    ) -> Iterator[tuple[Any, ...]]:
        """Every row of ``statement``: the driver's own iteration on SQLite, ``COPY ... TO
        STDOUT`` (of columns of PostgreSQL ``types``) on PostgreSQL, several times faster
        than a cursor there."""
        if self.sqlite:
            rows: Iterator[tuple[Any, ...]] = raw.cursor().execute(statement, params)
            return rows
        return _copied(raw, statement, params, types)

    def stream_cursor(self, raw: Any, name: str) -> Any:
        """A cursor that streams its rows: server-side (named ``name``) on PostgreSQL."""
        if self.sqlite:
            return raw.cursor()
        cursor = raw.driver_connection.cursor(name=name)  # server-side: streamed, not loaded
        cursor.itersize = BATCH_ROWS
        return cursor


def _copied(
    raw: Any, statement: str, params: Sequence[Any], types: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    cursor = raw.driver_connection.cursor()
    with cursor.copy(f"COPY ({statement}) TO STDOUT", params) as copy:
        copy.set_types(list(types))
        yield from copy.rows()


SQLITE = Dialect(sqlite=True)
POSTGRESQL = Dialect(sqlite=False)


def dialect_of(engine: Engine) -> Dialect:
    """The dialect of a SQLAlchemy engine."""
    return SQLITE if engine.dialect.name == "sqlite" else POSTGRESQL
