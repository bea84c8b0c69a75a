"""The memory store's transaction handle, and what every role shares: the rows and the writer."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from casework.storage.errors import StorageError
from casework.storage.memory.rows import Box, Rows
from casework.storage.tx import Tx

UNJOINABLE = "the memory store keeps its rows in this process and joins no database transaction"
"""Why a host's transaction cannot be joined: there is no database."""


class MemoryTx(Tx):
    """The memory store's transaction handle: the working copy of the rows it writes."""

    __slots__ = ("rows",)

    def __init__(self, rows: Rows) -> None:
        self.rows = rows


def rows_of(tx: Tx) -> Rows:
    """The working rows of a memory store's transaction."""
    if not isinstance(tx, MemoryTx):
        raise StorageError("a memory store takes only its own transactions")
    return tx.rows


class Role:
    """What every role of a memory store shares: the store's rows and its writer."""

    def __init__(self, box: Box, writing: Callable[[], AbstractContextManager[Rows]]) -> None:
        self._box = box
        self._write = writing

    @property
    def _rows(self) -> Rows:
        """The committed rows: read them, never change them."""
        return self._box.rows

    def _writing(self) -> AbstractContextManager[Rows]:
        """A write transaction: the store's own, on a copy of the rows."""
        return self._write()
