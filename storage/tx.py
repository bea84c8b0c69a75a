"""The handle of a write transaction, which every role method that writes inside one
takes instead of an untyped cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPICursor


class Tx:
    """A write transaction in progress: :meth:`casework.storage.port.Store.transaction`
    hands it out, and every role method that writes inside the transaction takes it. It
    is valid only inside the ``with``; each store hands out its own kind (the SQL
    stores': :class:`SqlTx`), and a store takes only its own."""

    __slots__ = ()


class SqlTx(Tx):
    """The SQL stores' transaction handle: the driver cursor the transaction runs on."""

    __slots__ = ("cursor",)

    def __init__(self, cursor: DBAPICursor) -> None:
        self.cursor = cursor


def cursor_of(tx: Tx) -> DBAPICursor:
    """The driver cursor of a SQL store's transaction."""
    return cast("SqlTx", tx).cursor
