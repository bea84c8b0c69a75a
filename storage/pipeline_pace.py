"""How many statements a pipelined transaction lets go ahead of their results.

In pipeline mode (PostgreSQL, :meth:`casework.storage.transition_sql.TransitionSQL.
transaction`) each statement goes out in a packet of its own the moment it is run, and
the server reads them only as fast as it runs them. A batch of the worker (200
deadlines: an event, a case row, the next level and a mail each) sends some 800, and
the server's socket, full of small packets, dropped one now and then: TCP sent it
again after its 200 ms minimum, and the whole batch waited for it. A
:class:`PacedCursor` waits for the results once :data:`PIPELINE_DEPTH` statements are
unread, which keeps the server's queue short and costs a round trip per that many.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

PIPELINE_DEPTH = 100
"""Statements sent before their results are read."""


class PacedCursor:
    """A pipelined transaction's cursor that reads the results back (a pipeline sync,
    which does not end the transaction) before more than :data:`PIPELINE_DEPTH`
    statements are unread. A statement's error comes back at that sync, as at a read."""

    __slots__ = ("_cursor", "_pipeline", "_unread")

    def __init__(self, cursor: Any, pipeline: Any) -> None:
        self._cursor = cursor
        self._pipeline = pipeline
        self._unread = 0

    def execute(self, statement: str, parameters: Any = ()) -> PacedCursor:
        """Send ``statement``."""
        self._sending(1)
        self._cursor.execute(statement, parameters)
        return self

    def executemany(self, statement: str, parameters: Any) -> None:
        """Send ``statement`` once for each of ``parameters``, a depth at a time."""
        rows = parameters if isinstance(parameters, list) else list(parameters)
        for start in range(0, len(rows), PIPELINE_DEPTH):
            chunk = rows[start : start + PIPELINE_DEPTH]
            self._sending(len(chunk))
            self._cursor.executemany(statement, chunk)

    def _sending(self, count: int) -> None:
        if self._unread and self._unread + count > PIPELINE_DEPTH:
            self._pipeline.sync()
            self._unread = 0
        self._unread += count

    def fetchone(self) -> Any:
        """The next row of the last statement (every result before it is read too)."""
        self._unread = 0
        return self._cursor.fetchone()

    def fetchall(self) -> Any:
        """The rows of the last statement (every result before it is read too)."""
        self._unread = 0
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        self._unread = 0
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)
